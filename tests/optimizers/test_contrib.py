"""The rest of optax.contrib against optax 0.2.8 in float64; asgd, ftrl, momo's paper weight
decay and the PyTorch/Keras schedules against float64 NumPy transcriptions.

A comparison runs both optimizers for 300 steps of the small least-squares fit of
``_contrib_reference.problem`` in float64, each run one jitted ``lax.scan``, and asks for
agreement to 1e-10 (the parameters are of order 1). Where an optimizer amplifies rounding
once converged (ACProp's centred second moment and MoMo-Adam's adaptive lower bound go to
~0), the non-default case runs 100 steps, before that point.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

import lossjax
from tests.optimizers._contrib_reference import assert_same_trajectory, problem

MASK = {"w": True, "b": False}


def _run(opt, steps, extra):
    params, loss = problem()
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)

    def body(carry, _):
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p)
        kwargs = {"value": value, "obj_fn": loss,
                  "grad_fn": lambda q, i: jax.grad(loss)(q)}
        updates, s = opt.update(grads, s, p, **{k: kwargs[k] for k in extra})
        return (optax.apply_updates(p, updates), s), value

    @jax.jit
    def run(p):
        (p, _), values = jax.lax.scan(body, (p, opt.init(p)), None, length=steps)
        return p, values

    return params, *run(params)


class _Optax:
    """optax's names where optax has them (core transforms in optax, the rest in contrib)."""

    def __getattr__(self, name):
        return getattr(optax if name in ("sgd", "adam") else optax.contrib, name)


# name -> (build(namespace), update keyword arguments, steps, tolerance)
CASES = {
    "cocob": (lambda m: m.cocob(), (), 300, 1e-10),
    "cocob-all": (lambda m: m.cocob(0.5, 10.0, 1e-6, 1e-3, MASK), (), 300, 1e-10),
    "mechanize-sgd": (lambda m: m.mechanize(m.sgd(0.1)), (), 300, 1e-10),
    "mechanize-all": (lambda m: m.mechanize(m.sgd(0.05, momentum=0.5), 0.1, 1e-6, 1e-3, 3),
                      (), 300, 1e-10),
    "madgrad": (lambda m: m.madgrad(0.01), (), 300, 1e-10),
    # optax takes √(k + 1) of the int32 count in float32: 1e-9 apart with a schedule.
    "madgrad-all": (lambda m: m.madgrad(lambda c: 0.02 / (1 + c), 0.5, 1e-2, 1e-5), (), 300,
                    1e-8),
    "acprop": (lambda m: m.acprop(0.01), (), 300, 1e-10),
    "acprop-all": (lambda m: m.acprop(0.02, 0.8, 0.99, 1e-8, 1e-10, 1e-2, MASK), (), 100, 1e-10),
    "simplified_ademamix": (lambda m: m.simplified_ademamix(0.001), (), 300, 1e-10),
    "simplified_ademamix-all": (
        lambda m: m.simplified_ademamix(0.002, 0.9, 0.99, lambda t: 0.1 * t / (t + 10), 1e-6,
                                        1e-9, 1e-2, MASK), (), 300, 1e-10),
    "dowg": (lambda m: m.dowg(), (), 300, 1e-10),
    "dowg-all": (lambda m: m.dowg(0.5, 0.01, 1e-3, 1e-3, MASK), (), 300, 1e-10),
    "sophia": (lambda m: m.sophia(0.01), ("obj_fn",), 300, 1e-10),
    "sophia-all": (lambda m: m.sophia(0.02, 0.9, 0.95, 1e-6, 1e-3, MASK, 0.05, 0.5, 3,
                                      mu_dtype=jnp.float32), ("obj_fn",), 300, 1e-10),
    "sam": (lambda m: m.sam(m.sgd(0.05), optax.chain(m.normalize(), m.sgd(0.05))), (), 300,
            1e-10),
    "sam-all": (lambda m: m.sam(m.adam(0.01), optax.chain(m.normalize(), m.sgd(0.1, 0.5)), 3,
                                False), (), 300, 1e-10),
    "sam-opaque": (lambda m: m.sam(m.adam(0.01), optax.chain(m.normalize(), m.adam(0.05)), 3,
                                   opaque_mode=True), ("grad_fn",), 300, 1e-10),
    "schedule_free-sgd": (lambda m: m.schedule_free(m.sgd(0.1), 0.1), (), 300, 1e-10),
    "schedule_free-adam": (
        lambda m: m.schedule_free(m.adam(lambda c: 0.05 * jnp.minimum(1.0, (c + 1) / 20), b1=0.0),
                                  lambda c: 0.05 * jnp.minimum(1.0, c / 20), 0.8, 1.0),
        (), 300, 1e-10),
    "momo": (lambda m: m.momo(), ("value",), 300, 1e-10),
    "momo-all": (lambda m: m.momo(0.5, 0.8, -0.5, 0.0, True), ("value",), 300, 1e-10),
    "momo_adam": (lambda m: m.momo_adam(), ("value",), 300, 1e-10),
    "momo_adam-all": (lambda m: m.momo_adam(0.05, 0.8, 0.99, 1e-6, -0.5, 0.0, True),
                      ("value",), 100, 1e-10),
}


@pytest.mark.parametrize("name", CASES)
def test_trajectory_equals_optax_contrib_in_float64(name, x64):
    build, extra, steps, tol = CASES[name]
    start, ours, values = _run(build(lossjax), steps, extra)
    _, theirs, _ = _run(build(_Optax()), steps, extra)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=tol)
    assert float(jnp.max(jnp.abs(ours["w"] - start["w"]))) > 0.3
    assert float(values[-1]) < 0.5 * float(values[0])


def test_dpsgd_equals_optax_contrib():
    """Per-example clipping, the same noise draws, momentum: 20 steps, float32."""
    params, _ = problem()
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 6))
    y = jax.random.normal(jax.random.PRNGKey(2), (8, 4))

    def example_loss(p, xi, yi):
        return jnp.sum(jnp.square(xi @ p["w"] + p["b"] - yi))

    per_example = jax.vmap(jax.grad(example_loss), in_axes=(None, 0, 0))

    def run(opt):
        def body(carry, _):
            p, s = carry
            updates, s = opt.update(per_example(p, x, y), s, p)
            return (optax.apply_updates(p, updates), s), None

        return jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), None, length=20)[0][0])(
            params)

    ours = run(lossjax.dpsgd(0.05, 1.0, 0.3, seed=3, momentum=0.5))
    with pytest.warns(DeprecationWarning):  # optax's dpsgd passes a deprecated seed=
        theirs = run(optax.contrib.dpsgd(0.05, 1.0, 0.3, seed=3, momentum=0.5))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)
    assert float(jnp.max(jnp.abs(ours["w"] - params["w"]))) > 0.1


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_differentially_private_aggregate_equals_optax_in_float64_and_complex(dtype, x64):
    """Per-example gradients in float64 and complex128 (norms of ``|g|²``, complex noise):
    the same clipping and noise draws as optax's, to 1e-12, over three calls."""
    rng = np.random.default_rng(0)
    grads = {"w": rng.normal(size=(5, 3, 2)) * np.array([3.0, 0.1, 1.0, 0.2, 2.0])[:, None,
                                                                                  None],
             "b": rng.normal(size=(5, 2))}
    if dtype == jnp.complex128:
        grads = {k: g * (1.0 - 0.5j) for k, g in grads.items()}
    grads = jax.tree.map(lambda g: jnp.asarray(g, dtype), grads)

    def run(tx):
        state, seen = tx.init(None), []
        for _ in range(3):
            updates, state = tx.update(grads, state)
            seen.append(updates)
        return seen

    ours = jax.jit(lambda: run(lossjax.differentially_private_aggregate(1.0, 0.5, 7)))()
    theirs = jax.jit(lambda: run(optax.contrib.differentially_private_aggregate(1.0, 0.5, 7)))()
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="batch axis"):
        lossjax.differentially_private_aggregate(1.0, 0.5, 7).update(
            {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}, None)


@pytest.mark.parametrize("build", [
    lambda m: m.galore(1e-2, rank=2, update_proj_gap=20),
    lambda m: m.galore(2e-2, 3, 1000, 0.5, None, 1e-2, MASK,
                       m.GaLoreDimensionNumbers(reduction_axis=1, output_axis=0)),
], ids=["rank2", "all"])
def test_galore_equals_optax_contrib(build):
    """float32 (optax takes the SVD in float32): within 10x optax's own spread."""
    assert_same_trajectory(build(lossjax), build(optax.contrib))


# --------------------------------------------------------------- NumPy transcriptions


def _quadratic():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    a = a @ a.T / 5 + np.eye(5)
    target = rng.normal(size=5)
    return a, target, lambda w: a @ (w - target), np.full(5, 0.5)


def _scan_float64(opt, grad, w0, steps, update_kwargs=lambda w: {}):
    def body(carry, _):
        w, s = carry
        updates, s = opt.update(grad(w), s, w, **update_kwargs(w))
        return (optax.apply_updates(w, updates), s), None

    return jax.jit(lambda w: jax.lax.scan(body, (w, opt.init(w)), None, length=steps)[0])(
        jnp.asarray(w0, jnp.float64))


def test_asgd_matches_pytorch_algorithm_in_float64(x64):
    """torch.optim.ASGD's single-tensor loop, transcribed (t0 small so averaging starts)."""
    a, target, grad, w0 = _quadratic()
    lr, lambd, alpha, t0, wd = 0.05, 1e-2, 0.75, 20.0, 1e-3
    w, ax, eta, mu = w0.copy(), np.zeros(5), lr, 1.0
    for step in range(1, 101):
        g = grad(w) + wd * w
        w = w * (1 - lambd * eta) - eta * g
        ax = w.copy() if mu == 1 else ax + (w - ax) * mu
        eta = lr / (1 + lambd * lr * step) ** alpha
        mu = 1 / max(1, step - t0)
    jgrad = lambda v: jnp.asarray(a) @ (v - jnp.asarray(target))  # noqa: E731
    params, state = _scan_float64(lossjax.asgd(lr, lambd, alpha, t0, wd), jgrad, w0, 100)
    np.testing.assert_allclose(np.asarray(params), w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(state.ax), ax, rtol=1e-12, atol=1e-12)
    assert not np.allclose(ax, w)


def test_ftrl_matches_keras_formula_in_float64(x64):
    """Keras' Ftrl.update_step (McMahan et al.'s FTRL-Proximal), all options on."""
    a, target, grad, w0 = _quadratic()
    lr, power, n0, l1, l2, l2s, beta = 0.5, -0.5, 0.1, 0.05, 0.01, 0.02, 0.1
    w, n, z = w0.copy(), np.full(5, n0), np.zeros(5)
    for _ in range(100):
        g = grad(w)
        n_new = n + g * g
        z = z + g + 2 * l2s * w - (n_new ** -power - n ** -power) / lr * w
        quadratic = n_new ** -power / lr + 2 * (l2 + beta / (2 * lr))
        w = (np.clip(z, -l1, l1) - z) / quadratic
        n = n_new
    jgrad = lambda v: jnp.asarray(a) @ (v - jnp.asarray(target))  # noqa: E731
    params, _ = _scan_float64(lossjax.ftrl(lr, power, n0, l1, l2, l2s, beta), jgrad, w0, 100)
    np.testing.assert_allclose(np.asarray(params), w, rtol=1e-12, atol=1e-12)
    assert np.linalg.norm(w - target) < 0.5 * np.linalg.norm(w0 - target)


@pytest.mark.parametrize("adam", [False, True])
def test_momo_weight_decay_follows_the_paper_in_float64(adam, x64):
    """Schaipp et al. Lemma 3.1 / the reference code: w ← (w − τ·d)/(1 + lr·λ)."""
    a, target, grad, w0 = _quadratic()
    f = lambda w: 0.5 * (w - target) @ a @ (w - target)  # noqa: E731
    lr, wd, b1, b2, eps = (0.05, 0.1, 0.9, 0.999, 1e-8) if adam else (0.5, 0.1, 0.9, 0, 0)
    w, d, v, barf, gamma = w0.copy(), np.zeros(5), np.zeros(5), 0.0, 0.0
    for t in range(1, 51):
        g, value = grad(w), f(w)
        beta = b1 if (adam or t > 1) else 0.0
        barf = beta * barf + (1 - beta) * value
        gamma = beta * gamma + (1 - beta) * g @ w
        d = beta * d + (1 - beta) * g
        if adam:
            v = b2 * v + (1 - b2) * g * g
            precond = np.sqrt(v / (1 - b2 ** t)) + eps
            c1, direction = 1 - b1 ** t, d / precond
        else:
            c1, direction = 1.0, d
        rho = 1 + lr * wd
        tau = min(lr / c1, max(rho * (barf - gamma) + d @ w, 0) / (d @ direction))
        w = (w - tau * direction) / rho
    opt = (lossjax.momo_adam(lr, b1, b2, eps, weight_decay=wd) if adam
           else lossjax.momo(lr, weight_decay=wd))
    jf = lambda v: 0.5 * (v - target) @ jnp.asarray(a) @ (v - target)  # noqa: E731
    params, _ = _scan_float64(opt, jax.grad(jf), w0, 50,
                              update_kwargs=lambda v: {"value": jf(v)})
    np.testing.assert_allclose(np.asarray(params), w, rtol=1e-11, atol=1e-11)
    # optax 0.2.8 divides only w (optax PR #1787): a different trajectory.
    theirs = optax.contrib.momo_adam(lr, b1, b2, eps, weight_decay=wd) if adam else \
        optax.contrib.momo(lr, weight_decay=wd)
    other, _ = _scan_float64(theirs, jax.grad(jf), w0, 50,
                             update_kwargs=lambda v: {"value": jf(v)})
    assert float(jnp.max(jnp.abs(other - params))) > 1e-4


def _cyclic_numpy(t, base, high, up, down, mode, gamma):
    total = up + down
    ratio = up / total
    cycle = np.floor(1 + t / total)
    x = 1.0 + t / total - cycle
    factor = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1),
             "exp_range": gamma ** t}[mode]
    return base + (high - base) * factor * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_matches_pytorch_cycliclr_formula(mode):
    steps = np.arange(0, 60)
    schedule = lossjax.schedules.cyclic(0.01, 0.1, 7, 5, mode=mode, gamma=0.97)
    got = np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps)))
    want = [_cyclic_numpy(t, 0.01, 0.1, 7, 5, mode, 0.97) for t in steps]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_swalr_equals_pytorch_swalr_recursion_and_inverse_time_decay_keras():
    """PyTorch's SWALR recovers the initial rate from the previous step's each time; from
    a constant rate that recursion is the closed form lossjax uses."""
    lr0, swa, start, anneal = 0.5, 0.05, 5, 4
    rates, lr = [], lr0
    for t in range(15):
        step = t - start
        if step >= 0:
            prev_alpha = (1 - np.cos(np.pi * max(0, min(1, (step - 1) / anneal)))) / 2
            initial = swa if prev_alpha == 1 else (lr - prev_alpha * swa) / (1 - prev_alpha)
            alpha = (1 - np.cos(np.pi * max(0, min(1, step / anneal)))) / 2
            lr = swa * alpha + initial * (1 - alpha)
        rates.append(lr)
    schedule = lossjax.schedules.swalr(lr0, swa, start, anneal)
    got = jax.jit(jax.vmap(schedule))(jnp.arange(15))
    np.testing.assert_allclose(np.asarray(got), rates, rtol=1e-6)
    decay = lossjax.schedules.inverse_time_decay(0.1, 10, 0.5, staircase=True)
    got = jax.jit(jax.vmap(decay))(jnp.arange(0, 40, 7))
    np.testing.assert_allclose(np.asarray(got),
                               [0.1 / (1 + 0.5 * np.floor(t / 10)) for t in range(0, 40, 7)],
                               rtol=1e-6)


def test_swa_params_is_the_mean_of_the_snapshots():
    opt = optax.chain(lossjax.sgd(0.1), lossjax.swa_params(swa_start=3, swa_freq=2))
    w = jnp.array([1.0, -2.0])
    state, snapshots = opt.init(w), []
    step = jax.jit(lambda w, s: opt.update(2 * w, s, w))
    for t in range(1, 10):
        updates, state = step(w, state)
        w = optax.apply_updates(w, updates)
        if t > 3 and (t - 3) % 2 == 0:
            snapshots.append(np.asarray(w))
    np.testing.assert_allclose(np.asarray(lossjax.averaged_params(state)),
                               np.mean(snapshots, axis=0), rtol=1e-6)
    assert int(state[-1].n_averaged) == len(snapshots) == 3
