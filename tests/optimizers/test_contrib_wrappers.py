"""nu_dtype, microbatch, multi_steps' skipping and accumulator dtype, sam_value_and_grad."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lossjax
from tests.optimizers._mlp import mlp_loss, trajectory

BF16 = jnp.bfloat16

# ------------------------------------------------------------------------------ nu_dtype

NU_DTYPE = {
    "adam": lambda **kw: lossjax.adam(1e-3, **kw),
    "adamw": lambda **kw: lossjax.adamw(1e-3, **kw),
    "nadam": lambda **kw: lossjax.nadam(1e-3, **kw),
    "nadamw": lambda **kw: lossjax.nadamw(1e-3, **kw),
    "amsgrad": lambda **kw: lossjax.amsgrad(1e-3, **kw),
    "adopt": lambda **kw: lossjax.adopt(1e-3, **kw),
    "ademamix": lambda **kw: lossjax.ademamix(1e-3, **kw),
    "acprop": lambda **kw: lossjax.acprop(1e-3, **kw),
    "simplified_ademamix": lambda **kw: lossjax.simplified_ademamix(1e-3, **kw),
}


def _mlp_params(sizes=(8, 16, 3)):
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {"dense1": {"w": jax.random.normal(k1, sizes[:2]) / 3, "b": jnp.zeros(sizes[1])},
            "dense2": {"w": jax.random.normal(k2, sizes[1:]) / 4, "b": jnp.zeros(sizes[2])}}


def _moment_bytes(state, params):
    """Bytes of the state's leaves shaped like a parameter (the per-parameter state)."""
    shapes = {p.shape for p in jax.tree.leaves(params)}
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)
               if x.shape in shapes and x.ndim)


@pytest.mark.parametrize("name", NU_DTYPE)
def test_nu_dtype_stores_the_second_moment_and_keeps_it_through_update(name):
    opt = NU_DTYPE[name](mu_dtype=BF16, nu_dtype=BF16)
    params = _mlp_params()
    state = jax.eval_shape(opt.init, params)
    after = jax.eval_shape(lambda s: opt.update(params, s, params)[1], state)
    assert jax.tree.map(lambda x: x.dtype, after) == jax.tree.map(lambda x: x.dtype, state)
    float_moments = [x for x in jax.tree.leaves(state) if x.ndim and x.dtype != BF16]
    assert not float_moments, f"{name}: moments not stored in bfloat16: {float_moments}"


def test_adamw_bf16_moments_take_4_bytes_per_parameter_and_train_like_float32():
    params = _mlp_params()
    n = sum(p.size for p in jax.tree.leaves(params))
    low = lossjax.adamw(1e-2, mu_dtype=BF16, nu_dtype=BF16, weight_decay=1e-4)
    full = lossjax.adamw(1e-2, weight_decay=1e-4)
    assert _moment_bytes(jax.eval_shape(low.init, params), params) == 4 * n
    assert _moment_bytes(jax.eval_shape(full.init, params), params) == 8 * n
    # The first update is computed in float32 from the (zero) stored moments: equal.
    first = [jax.jit(opt.update)(params, opt.init(params), params)[0] for opt in (low, full)]
    jax.tree.map(np.testing.assert_array_equal, *first)

    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    xs = jax.random.normal(kx, (300, 32, 8))
    ys = jax.random.randint(ky, (300, 32), 0, 3)

    @jax.jit
    def final_losses(p):
        finals = [trajectory(opt, p, xs, ys) for opt in (low, full)]
        return [mlp_loss(q, xs.reshape(-1, 8), ys.reshape(-1)) for q in finals]

    loss_low, loss_full = final_losses(params)
    start = mlp_loss(params, xs.reshape(-1, 8), ys.reshape(-1))
    assert float(loss_full) < 0.9 * float(start)
    assert abs(float(loss_low) - float(loss_full)) <= 0.01 * float(loss_full)


# ---------------------------------------------------------------------------- microbatch


def _regression(batch=4096, width=128):
    params = {"w1": jnp.ones((16, width)) / 4, "b1": jnp.zeros(width),
              "w2": jnp.ones((width, width)) / width, "w3": jnp.ones((width, 1))}
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x, y = jax.random.normal(kx, (batch, 16)), jax.random.normal(ky, (batch, 1))

    def loss(p, data):
        xb, yb = data
        h = jnp.tanh(xb @ p["w1"] + p["b1"])
        h = jnp.tanh(h @ p["w2"])
        return jnp.mean(jnp.square(h @ p["w3"] - yb))

    return params, (x, y), loss


def test_microbatch_equals_optax_microbatching_and_the_full_batch():
    params, data, loss = _regression(batch=64, width=8)
    value_and_grad = jax.value_and_grad(loss)
    ours = lossjax.microbatch(value_and_grad, 4)
    theirs = optax.microbatching.microbatch(
        value_and_grad, argnums=1, microbatch_size=16,
        accumulator=optax.microbatching.AccumulationType.MEAN)
    results = jax.jit(lambda p, d: (ours(p, d), theirs(p, d), value_and_grad(p, d)))(params, data)
    for other in results[1:]:
        for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(other), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_microbatch_size_zero_batch_and_bad_arguments():
    params, (x, y), loss = _regression(batch=8, width=4)
    value, grads = lossjax.microbatch(jax.value_and_grad(loss), 4)(params, (x[:0], y[:0]))
    assert float(value) == 0.0
    assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(grads))
    with pytest.raises(ValueError, match="num_microbatches"):
        lossjax.microbatch(jax.grad(loss), 3)(params, (x, y))
    with pytest.raises(ValueError, match="num_microbatches"):
        lossjax.microbatch(jax.grad(loss), 0)


def test_microbatch_peak_temporary_memory_falls_k_fold():
    params, data, loss = _regression()
    value_and_grad = jax.value_and_grad(loss)

    def temp_bytes(fn):
        return jax.jit(fn).lower(params, data).compile().memory_analysis().temp_size_in_bytes

    full = temp_bytes(value_and_grad)
    for k in (4, 8):
        assert temp_bytes(lossjax.microbatch(value_and_grad, k)) <= 1.2 / k * full


# ------------------------------------------------------------------- multi_steps skipping


def _grad_stream():
    grads = [jnp.array([1.0, -2.0]), jnp.array([jnp.nan, 1.0]), jnp.array([3.0, 0.5]),
             jnp.array([100.0, 0.0]), jnp.array([-1.0, 2.0]), jnp.array([0.5, 0.5]),
             jnp.array([jnp.inf, 0.0]), jnp.array([2.0, 2.0])]
    return jnp.stack(grads)


@pytest.mark.parametrize("skip", [
    "not_finite", "large",
])
def test_multi_steps_skipping_equals_optax(skip):
    should_skip = {"not_finite": (lossjax.skip_not_finite, optax.skip_not_finite),
                   "large": (functools.partial(lossjax.skip_large_updates, max_squared_norm=50.0),
                             functools.partial(optax.skip_large_updates,
                                               max_squared_norm=50.0))}[skip]
    ours = lossjax.multi_steps(lossjax.adam(0.1), 2, should_skip_update_fn=should_skip[0],
                               accumulator_dtype=jnp.float32)
    theirs = optax.MultiSteps(optax.adam(0.1), 2, should_skip_update_fn=should_skip[1],
                              accumulator_dtype=jnp.float32)

    def run(opt):
        def body(carry, g):
            p, s = carry
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), (p, s.mini_step, s.gradient_step)

        return jax.lax.scan(body, (jnp.ones(2), opt.init(jnp.ones(2))), _grad_stream())[1]

    got, want = jax.jit(lambda: (run(ours), run(theirs)))()
    for a, b in zip(got, want, strict=True):  # float32: a few ulps apart
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5)
    assert int(got[2][-1]) >= 2


def test_multi_steps_accumulator_dtype_and_skip_state():
    opt = lossjax.multi_steps(lossjax.sgd(1.0), 3, should_skip_update_fn=lossjax.skip_not_finite,
                              accumulator_dtype=BF16)
    state = opt.init({"w": jnp.zeros(2)})
    assert state.acc_grads["w"].dtype == BF16
    assert set(state.skip_state) == {"should_skip", "num_not_finite"}
    _, state = jax.jit(opt.update)({"w": jnp.array([jnp.nan, 1.0])}, state)
    assert int(state.skip_state["num_not_finite"]) == 1
    assert int(state.mini_step) == 0
    with pytest.raises(ValueError, match="boolean scalar"):
        lossjax.multi_steps(lossjax.sgd(1.0), 2, should_skip_update_fn=lambda g, s, p: (
            jnp.zeros(2, bool), ())).update(jnp.ones(2), opt.init(jnp.ones(2)))


# -------------------------------------------------------------------- sam_value_and_grad


def test_sam_value_and_grad_matches_the_formula_and_rho_zero_is_value_and_grad():
    params, data, loss = _regression(batch=16, width=4)
    rho = 0.05

    def reference(p, d, adaptive):
        value, g = jax.value_and_grad(loss)(p, d)
        scale = jax.tree.map(lambda w: jnp.abs(w) if adaptive else jnp.ones_like(w), p)
        norm = jnp.sqrt(sum(jnp.sum((s * x) ** 2) for s, x in
                            zip(jax.tree.leaves(scale), jax.tree.leaves(g), strict=True)))
        eps = jax.tree.map(lambda s, x: rho * s * s * x / norm, scale, g)
        return value, jax.grad(loss)(jax.tree.map(jnp.add, p, eps), d)

    @jax.jit
    def everything(p, d):
        return ([lossjax.sam_value_and_grad(loss, rho, adaptive=a)(p, d) for a in (False, True)],
                [reference(p, d, a) for a in (False, True)],
                lossjax.sam_value_and_grad(loss, 0.0)(p, d), jax.value_and_grad(loss)(p, d))

    ours, refs, zero, plain = everything(params, data)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(refs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    jax.tree.map(np.testing.assert_array_equal, zero, plain)
    assert not np.allclose(np.asarray(ours[0][1]["w1"]), np.asarray(plain[1]["w1"]))


def test_sam_value_and_grad_feeds_multi_steps():
    """Two half batches through multi_steps(k=2) = the mean of their SAM gradients."""
    params, (x, y), loss = _regression(batch=16, width=4)
    sam_grad = lossjax.sam_value_and_grad(loss, 0.1)
    opt = lossjax.multi_steps(lossjax.sgd(1.0), 2)

    @jax.jit
    def run(p):
        state = opt.init(p)
        grads = [sam_grad(p, (x[i::2], y[i::2]))[1] for i in (0, 1)]
        _, state = opt.update(grads[0], state, p)
        updates, _ = opt.update(grads[1], state, p)
        scale = jax.tree.map(lambda a, b: jnp.maximum(jnp.abs(a), jnp.abs(b)), *grads)
        return updates, jax.tree.map(lambda a, b: -(a + b) / 2, *grads), scale

    updates, expected, scale = run(params)
    # float32 noise of the running mean g1 + (g2 − g1)/2 against (g1 + g2)/2, relative to
    # the half-batch gradients (their mean can be much smaller where they nearly cancel)
    for a, b, c in zip(jax.tree.leaves(updates), jax.tree.leaves(expected),
                       jax.tree.leaves(scale), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0,
                                   atol=float(4 * np.finfo(np.float32).eps * np.max(c)))
