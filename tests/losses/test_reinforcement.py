"""Reinforcement-learning returns, advantages and losses: float64 NumPy references written
from the formulas, rlax (values and gradients, one trajectory and batched), stop-gradients on
targets, ``where`` masking with NaN in padded steps, reductions, jit/vmap and shape errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

import lossjax

T, B, A = 7, 3, 4
LAMBDAS = (0.0, 0.95, 1.0)


def _trajectory(seed=0, batch=(B,), dtype=np.float64):
    """Rewards, discounts (an episode end mid-trajectory), values [T + 1, ...], rhos."""
    rng = np.random.default_rng(seed)
    shape = (T, *batch)
    rewards = rng.normal(size=shape)
    discounts = np.full(shape, 0.9)
    discounts[3] = 0.0
    values = rng.normal(size=(T + 1, *batch))
    rhos = rng.uniform(0.2, 2.0, size=shape)
    return tuple(a.astype(dtype) for a in (rewards, discounts, values, rhos))


# --- float64 NumPy references, from the formulas (explicit sums, not recursions) ----------


def _discount_products(discounts, start, stop):
    """∏_{j=start}^{stop-1} discounts[j] (1 for an empty product)."""
    return np.prod(discounts[start:stop], axis=0)


def ref_discounted(r, g, bootstrap):
    n = len(r)
    return np.stack([
        sum(_discount_products(g, t, k) * r[k] for k in range(t, n))
        + _discount_products(g, t, n) * bootstrap
        for t in range(n)])


def ref_n_step(r, g, v, n_steps):
    n = len(r)
    out = []
    for t in range(n):
        end = min(t + n_steps, n)
        out.append(sum(_discount_products(g, t, k) * r[k] for k in range(t, end))
                   + _discount_products(g, t, end) * v[end - 1])
    return np.stack(out)


def ref_lambda(r, g, v, lam):
    # The λ-return is the (1 − λ)λ^(k−1)-weighted mix of k-step returns; past the end, the
    # remaining weight λ^(n−t−1) goes to the full (bootstrapped) return.
    n = len(r)
    out = []
    for t in range(n):
        horizon = n - t
        total = lam ** (horizon - 1) * ref_n_step(r, g, v, horizon)[t]
        for k in range(1, horizon):
            total = total + (1 - lam) * lam ** (k - 1) * ref_n_step(r, g, v, k)[t]
        out.append(total)
    return np.stack(out)


def ref_gae(r, g, v, lam):
    deltas = r + g * v[1:] - v[:-1]
    n = len(r)
    return np.stack([
        sum(_discount_products(g * lam, t, k) * deltas[k] for k in range(t, n))
        for t in range(n)])


def ref_vtrace(v, v_next, r, g, rho, lam=1.0, clip=1.0):
    rho_bar = np.minimum(clip, rho)
    c = lam * np.minimum(1.0, rho)
    deltas = rho_bar * (r + g * v_next - v)
    n = len(r)
    return np.stack([
        sum(_discount_products(g * c, s, t) * deltas[t] for t in range(s, n))
        for s in range(n)])


def ref_log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def ref_pick(x, a):
    return np.take_along_axis(x, a[..., None], -1)[..., 0]


def ref_half_square_or_huber(e, delta):
    if delta is None:
        return 0.5 * e**2
    return np.where(np.abs(e) <= delta, 0.5 * e**2, delta * (np.abs(e) - 0.5 * delta))


# --- returns and advantages ---------------------------------------------------------------


@pytest.mark.parametrize("lam", LAMBDAS)
def test_returns_match_numpy_reference_in_float64(lam):
    r, g, v, rho = _trajectory()
    with jax.enable_x64(True):
        # one compiled program, not op by op (λ stays a Python float inside)
        gae, lam_returns, vtrace = jax.jit(lambda r, g, v, rho: (
            lossjax.generalized_advantage_estimation(r, g, v, lambda_=lam),
            lossjax.lambda_returns(r, g, v[1:], lambda_=lam),
            lossjax.vtrace(v[:-1], v[1:], r, g, rho, lambda_=lam,
                           clip_rho_threshold=1.3)))(r, g, v, rho)
        np.testing.assert_allclose(gae, ref_gae(r, g, v, lam), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lam_returns, ref_lambda(r, g, v[1:], lam),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(vtrace, ref_vtrace(v[:-1], v[1:], r, g, rho, lam, 1.3),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, T, T + 4])
def test_n_step_and_discounted_returns_match_numpy_reference_in_float64(n):
    r, g, v, _ = _trajectory(seed=1)
    with jax.enable_x64(True):
        n_step, discounted = jax.jit(lambda r, g, v: (  # one compiled program, not op by op
            lossjax.n_step_returns(r, g, v[1:], n=n),
            lossjax.discounted_returns(r, g, v[-1])))(r, g, v)
        np.testing.assert_allclose(n_step, ref_n_step(r, g, v[1:], n), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(discounted, ref_discounted(r, g, v[-1]), rtol=1e-12,
                                   atol=1e-12)


def test_hand_computed_gae_with_an_episode_end():
    # Step 1 ends the episode: its advantage ignores the values after it.
    adv = jax.jit(lambda r, g, v: lossjax.generalized_advantage_estimation(  # not op by op
        r, g, v, lambda_=1.0))(
        jnp.array([1.0, 1.0, 0.0], jnp.float32), jnp.array([1.0, 0.0, 1.0], jnp.float32),
        jnp.array([0.0, 0.0, 5.0, 7.0], jnp.float32))
    np.testing.assert_allclose(adv, [2.0, 1.0, 2.0])


def _rlax_returns(name, r, g, v, rho):
    """(lossjax function, rlax function for one trajectory, its float arguments); both
    functions take λ first, as an array, so one compilation serves every λ."""
    return {
        "gae": (lambda lam, r, g, v: lossjax.generalized_advantage_estimation(
                    r, g, v, lambda_=lam),
                lambda lam, r, g, v: rlax.truncated_generalized_advantage_estimation(
                    r, g, lam, v),
                (r, g, v)),
        "lambda": (lambda lam, r, g, v: lossjax.lambda_returns(r, g, v, lambda_=lam),
                   lambda lam, r, g, v: rlax.lambda_returns(r, g, v, lam), (r, g, v[1:])),
        "vtrace": (lambda lam, *a: lossjax.vtrace(*a, lambda_=lam),
                   lambda lam, *a: rlax.vtrace(*a, lam), (v[:-1], v[1:], r, g, rho)),
        "n_step": (lambda lam, r, g, v: lossjax.n_step_returns(r, g, v, n=3),
                   lambda lam, r, g, v: rlax.n_step_bootstrapped_returns(r, g, v, 3),
                   (r, g, v[1:])),
        "discounted": (lambda lam, *a: lossjax.discounted_returns(*a),
                       lambda lam, *a: rlax.discounted_returns(*a), (r, g, v[-1])),
    }[name]


def _value_and_grads(fn, args, cotangent):
    """Jitted ``lam -> (fn(lam, *args), ∇ of Σ cotangent · fn(lam, *args) wrt every arg)``."""
    argnums = tuple(range(1, len(args) + 1))
    grad = jax.grad(lambda *a: jnp.sum(fn(*a) * cotangent), argnums=argnums)
    compiled = jax.jit(lambda *a: (fn(*a), grad(*a)))
    return lambda lam: compiled(lam, *args)


@pytest.mark.parametrize("name, batched, dtype", [
    (name, batched, dtype) for name in ("gae", "lambda", "vtrace", "n_step", "discounted")
    for batched, dtype in ((False, np.float64), (True, np.float64), (True, np.float32))])
def test_returns_values_and_gradients_match_rlax(name, batched, dtype):
    r, g, v, rho = _trajectory(seed=2, batch=(B,) if batched else (), dtype=dtype)
    ours, theirs, args = _rlax_returns(name, r, g, v, rho)
    if batched:
        theirs = jax.vmap(theirs, in_axes=(None, *(0 if a.ndim == 1 else 1 for a in args)),
                          out_axes=1)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    cotangent = np.random.default_rng(3).normal(size=r.shape).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        args = tuple(jnp.asarray(a) for a in args)
        ours, theirs = _value_and_grads(ours, args, cotangent), _value_and_grads(
            theirs, args, cotangent)
        for lam in LAMBDAS:
            lam = jnp.asarray(lam, dtype)
            (out, grads), (want, want_grads) = ours(lam), theirs(lam)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, want, **tol)
            for got, expected in zip(grads, want_grads, strict=True):
                np.testing.assert_allclose(got, expected, **tol)


# --- losses ---------------------------------------------------------------------------------


def _policy_inputs(seed=0, batch=(B,), dtype=np.float64):
    rng = np.random.default_rng(seed)
    shape = (T, *batch)
    logits = rng.normal(size=(*shape, A)).astype(dtype)
    actions = rng.integers(0, A, size=shape).astype(np.int32)
    advantages = rng.normal(size=shape).astype(dtype)
    ratios = rng.uniform(0.6, 1.4, size=shape).astype(dtype)
    return logits, actions, advantages, ratios


def _value_inputs(seed=0, batch=(B,), dtype=np.float64):
    rng = np.random.default_rng(seed)
    shape = (T, *batch)
    q, next_q, selector = (rng.normal(size=(*shape, A)).astype(dtype) for _ in range(3))
    actions = rng.integers(0, A, size=shape).astype(np.int32)
    rewards, values, next_values = (rng.normal(size=shape).astype(dtype) for _ in range(3))
    discounts = np.full(shape, 0.9, dtype)
    discounts[3] = 0.0
    return q, actions, rewards, discounts, next_q, selector, values, next_values


def _losses(seed=0, batch=(B,), dtype=np.float64):
    """name -> (lossjax loss(*args, **kw), float64 NumPy per-step reference, args)."""
    logits, actions, adv, ratios = _policy_inputs(seed, batch, dtype)
    q, qa, r, g, next_q, sel, v, next_v = _value_inputs(seed, batch, dtype)
    old_v = v + np.random.default_rng(seed + 1).normal(size=v.shape).astype(dtype) * 0.3

    def pg(logits, actions, adv):
        return -ref_pick(ref_log_softmax(logits), actions) * adv

    def entropy(logits):
        lp = ref_log_softmax(logits)
        return np.sum(np.exp(lp) * lp, -1)

    def surrogate(ratios, adv):
        return -np.minimum(ratios * adv, np.clip(ratios, 0.8, 1.2) * adv)

    def value(v, old_v, ret):
        clipped = old_v + np.clip(v - old_v, -0.2, 0.2)
        return 0.5 * np.maximum((v - ret) ** 2, (clipped - ret) ** 2)

    def td(v, r, g, next_v):
        return ref_half_square_or_huber(r + g * next_v - v, 0.5)

    def q_learning(q, a, r, g, next_q):
        return 0.5 * (r + g * next_q.max(-1) - ref_pick(q, a)) ** 2

    def double_q(q, a, r, g, next_q, sel):
        target = r + g * ref_pick(next_q, sel.argmax(-1))
        return ref_half_square_or_huber(target - ref_pick(q, a), 1.0)

    return {
        "policy_gradient": (lossjax.policy_gradient_loss, pg, (logits, actions, adv)),
        "entropy": (lossjax.entropy_loss, entropy, (logits,)),
        "clipped_surrogate": (lossjax.clipped_surrogate_loss, surrogate, (ratios, adv)),
        "clipped_value": (lossjax.clipped_value_loss, value, (v, old_v, r)),
        "td": (lambda *a, **k: lossjax.td_loss(*a, huber_delta=0.5, **k), td,
               (v, r, g, next_v)),
        "q_learning": (lossjax.q_learning_loss, q_learning, (q, qa, r, g, next_q)),
        "double_q": (lambda *a, **k: lossjax.double_q_learning_loss(*a, huber_delta=1.0, **k),
                     double_q, (q, qa, r, g, next_q, sel)),
    }


LOSSES = tuple(_losses())


@pytest.mark.parametrize("name", LOSSES)
def test_losses_match_numpy_reference_every_reduction(name):
    loss, reference, args = _losses(seed=4)[name]
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.5, 2.0, size=(T, B))
    where = rng.uniform(size=(T, B)) > 0.3
    expected = reference(*args)
    with jax.enable_x64(True):
        none, total, mean, masked_mean, masked_none = jax.jit(lambda *args: (  # one program
            loss(*args, reduction="none"), loss(*args, reduction="sum"), loss(*args),
            loss(*args, weights=weights, where=where),
            loss(*args, weights=weights, where=where, reduction="none")))(*args)
        np.testing.assert_allclose(none, expected, rtol=1e-12)
        np.testing.assert_allclose(total, expected.sum(), rtol=1e-12)
        np.testing.assert_allclose(mean, expected.mean(), rtol=1e-12)
        masked = np.where(where, weights * expected, 0.0)
        np.testing.assert_allclose(masked_mean, masked.sum() / where.sum(), rtol=1e-12)
        np.testing.assert_allclose(masked_none, masked, rtol=1e-12)


def _rlax_per_step(name, args):
    """rlax's per-trajectory loss (or per-transition error) for the same inputs."""
    if name == "policy_gradient":
        logits, actions, adv = args
        return jax.vmap(rlax.policy_gradient_loss, in_axes=(1, 1, 1, 1))(
            logits, actions, adv, jnp.ones_like(adv))
    if name == "entropy":
        (logits,) = args
        return jax.vmap(rlax.entropy_loss, in_axes=(1, 1))(logits, jnp.ones(logits.shape[:2]))
    if name == "clipped_surrogate":
        ratios, adv = args
        return jax.vmap(rlax.clipped_surrogate_pg_loss, in_axes=(1, 1, None))(ratios, adv, 0.2)
    per_transition = jax.vmap(jax.vmap({
        "td": rlax.td_learning, "q_learning": rlax.q_learning,
        "double_q": rlax.double_q_learning}[name]))
    errors = per_transition(*args)
    return {"td": lambda e: rlax.huber_loss(e, 0.5), "q_learning": rlax.l2_loss,
            "double_q": lambda e: rlax.huber_loss(e, 1.0)}[name](errors).mean(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", [n for n in LOSSES if n != "clipped_value"])
def test_losses_values_and_gradients_match_rlax(name, dtype):
    loss, _, args = _losses(seed=6, dtype=dtype)[name]
    floats = [i for i, a in enumerate(args) if np.issubdtype(a.dtype, np.floating)]
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)

    def ours(*a):
        return loss(*a) * B  # lossjax averages over time and batch, rlax over time only

    def theirs(*a):
        return jnp.sum(_rlax_per_step(name, a))

    with jax.enable_x64(dtype == np.float64):
        args = tuple(jnp.asarray(a) for a in args)
        got = jax.jit(jax.value_and_grad(ours, argnums=floats))(*args)
        want = jax.jit(jax.value_and_grad(theirs, argnums=floats))(*args)
        np.testing.assert_allclose(got[0], want[0], **tol)
        for g, w in zip(got[1], want[1], strict=True):
            np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("name, target_args", [
    ("policy_gradient", (2,)), ("clipped_surrogate", (1,)), ("clipped_value", (1, 2)),
    ("td", (1, 2, 3)), ("q_learning", (2, 3, 4)), ("double_q", (2, 3, 4, 5))])
def test_no_gradient_flows_into_advantages_returns_or_targets(name, target_args):
    loss, _, args = _losses(seed=7, dtype=np.float32)[name]
    grads = jax.jit(jax.grad(lambda *a: loss(*a), argnums=target_args))(*args)
    for g in grads:
        assert np.all(np.asarray(g) == 0.0)


def test_vtrace_target_is_constant():
    r, g, v, rho = _trajectory(seed=8, dtype=np.float32)
    grads = jax.jit(jax.grad(lambda *a: jnp.sum(lossjax.vtrace(*a)), argnums=tuple(range(5))))(
        v[:-1], v[1:], r, g, rho)
    np.testing.assert_array_equal(grads[0], -np.ones_like(r))
    for g_ in grads[1:]:
        np.testing.assert_array_equal(g_, 0.0)


@pytest.mark.parametrize("name", LOSSES)
def test_nan_in_a_masked_step_reaches_neither_value_nor_gradient(name):
    loss, _, args = _losses(seed=9, dtype=np.float32)[name]
    where = np.ones((T, B), bool)
    where[2, 1] = where[5, 0] = False
    poisoned = tuple(
        a if not np.issubdtype(a.dtype, np.floating)
        else np.where(where.reshape(where.shape + (1,) * (a.ndim - 2)), a, np.nan).astype(a.dtype)
        for a in args)
    floats = tuple(i for i, a in enumerate(args) if np.issubdtype(a.dtype, np.floating))
    if name in ("policy_gradient", "q_learning", "double_q"):
        poisoned = tuple(np.where(where, a, -7) if a.dtype == np.int32 else a for a in poisoned)
    value, grads = jax.jit(jax.value_and_grad(lambda *a: loss(*a, where=where),
                                              argnums=floats))(*poisoned)
    clean = jax.jit(lambda *a: loss(*a, where=where))(*args)  # not op by op
    np.testing.assert_allclose(value, clean, rtol=1e-6)
    for g in grads:
        g = np.asarray(g)
        assert np.all(np.isfinite(g))
        assert np.all(g[~where] == 0.0)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_under_jit_and_vmap(name):
    loss, _, args = _losses(seed=10, dtype=np.float32)[name]
    per_step = jax.jit(lambda *a: loss(*a, reduction="none"))(*args)
    np.testing.assert_allclose(per_step, loss(*args, reduction="none"), rtol=1e-6)
    # vmapping the one-trajectory loss over the batch axis gives the per-trajectory means.
    one = jax.jit(jax.vmap(lambda *a: loss(*a), in_axes=1))(*args)
    np.testing.assert_allclose(one, per_step.mean(0), rtol=1e-5)


def test_returns_under_jit_and_vmap():
    r, g, v, _ = _trajectory(seed=11, dtype=np.float32)
    gae = lossjax.generalized_advantage_estimation(r, g, v, lambda_=0.9)
    np.testing.assert_allclose(
        jax.jit(lambda *a: lossjax.generalized_advantage_estimation(*a, lambda_=0.9))(r, g, v),
        gae, rtol=1e-6)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(lambda *a: lossjax.generalized_advantage_estimation(*a, lambda_=0.9),
                         in_axes=1, out_axes=1))(r, g, v), gae, rtol=1e-6)
    # Two batch axes work like one.
    r2, g2, v2 = (np.stack([a, a[:, ::-1]], -1) for a in (r, g, v))
    gae2 = jax.jit(lambda *a: lossjax.generalized_advantage_estimation(*a, lambda_=0.9))(
        r2, g2, v2)  # one compiled program, not op by op
    np.testing.assert_allclose(gae2[..., 0], gae, rtol=1e-6)
    np.testing.assert_allclose(gae2[..., 1], gae[:, ::-1], rtol=1e-6)


def test_half_inputs_give_float32():
    r, g, v, _ = _trajectory(seed=12, dtype=np.float16)
    # (the output dtypes from tracing alone: nothing to compile)
    assert jax.eval_shape(lambda r, g, v: lossjax.lambda_returns(r, g, v, lambda_=0.9),
                          r, g, v[1:]).dtype == jnp.float32
    logits, actions, adv, _ = _policy_inputs(dtype=np.float16)
    assert jax.eval_shape(lossjax.policy_gradient_loss, jnp.asarray(logits, jnp.bfloat16),
                          actions, adv).dtype == jnp.float32


def test_out_of_range_action_under_jit_is_nan():
    logits, actions, adv, _ = _policy_inputs(seed=13, dtype=np.float32)
    actions = actions.copy()
    actions[1, 2] = A
    per_step = jax.jit(lambda a: lossjax.policy_gradient_loss(logits, a, adv,
                                                              reduction="none"))(actions)
    assert np.isnan(per_step[1, 2]) and np.isfinite(np.delete(per_step.ravel(), 1 * B + 2)).all()


def test_illegal_actions_with_minus_inf_logits_are_finite():
    logits = jnp.array([[0.0, -jnp.inf, 1.0]], jnp.float32)
    value, grad = jax.jit(jax.value_and_grad(lossjax.entropy_loss))(logits)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    value, grad = jax.jit(jax.value_and_grad(lossjax.policy_gradient_loss))(
        logits, jnp.array([2]), jnp.array([1.0], jnp.float32))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# --- shape and argument errors ---------------------------------------------------------------


def test_shape_errors_name_the_arguments():
    r, g, v, rho = _trajectory(seed=14, dtype=np.float32)
    with pytest.raises(ValueError, match="rewards.*discounts"):
        lossjax.lambda_returns(r, g[:-1], v[1:])
    with pytest.raises(ValueError, match="rewards.*discounts"):
        lossjax.discounted_returns(r, g[:-1], 0.0)
    with pytest.raises(ValueError, match=r"values must have shape \(8, 3\).*T \+ 1"):
        lossjax.generalized_advantage_estimation(r, g, v[1:], lambda_=0.9)
    with pytest.raises(ValueError, match="values"):
        lossjax.lambda_returns(r, g, v[1:, :2])
    with pytest.raises(ValueError, match="bootstrap_value"):
        lossjax.discounted_returns(r, g, np.zeros((B, 1)))
    with pytest.raises(ValueError, match="rhos"):
        lossjax.vtrace(v[:-1], v[1:], r, g, rho[:, :2])
    logits, actions, adv, ratios = _policy_inputs(dtype=np.float32)
    with pytest.raises(ValueError, match="logits.*actions"):
        lossjax.policy_gradient_loss(logits[:, :2], actions, adv)
    with pytest.raises(ValueError, match="actions.*advantages"):
        lossjax.policy_gradient_loss(logits, actions, adv.T)
    with pytest.raises(ValueError, match="ratios.*advantages"):
        lossjax.clipped_surrogate_loss(ratios, adv[:, :1])
    q, qa, rr, gg, next_q, sel, vv, next_v = _value_inputs(dtype=np.float32)
    with pytest.raises(ValueError, match="next_q_values.*q_values"):
        lossjax.q_learning_loss(q, qa, rr, gg, next_q[..., :2])
    with pytest.raises(ValueError, match="next_q_selector"):
        lossjax.double_q_learning_loss(q, qa, rr, gg, next_q, sel[:1])
    with pytest.raises(ValueError, match="rewards.*discounts"):
        lossjax.td_loss(vv, rr, gg[:1], next_v)
    with pytest.raises(ValueError, match="next_values"):
        lossjax.td_loss(vv, rr, gg, next_v[:, :1])
    with pytest.raises(ValueError, match="old_values"):
        lossjax.clipped_value_loss(vv, next_v[:1], rr)


def test_actions_out_of_range_raise_when_concrete():
    logits, actions, adv, _ = _policy_inputs(dtype=np.float32)
    bad = actions.copy()
    bad[0, 0] = A
    with pytest.raises(ValueError, match=rf"actions must be in \[0, {A}\)"):
        lossjax.policy_gradient_loss(logits, bad, adv)
    q, qa, r, g, next_q, sel, _, _ = _value_inputs(dtype=np.float32)
    with pytest.raises(ValueError, match="actions must be in"):
        lossjax.q_learning_loss(q, -np.ones_like(qa), r, g, next_q)
    with pytest.raises(ValueError, match="integer"):
        lossjax.q_learning_loss(q, qa.astype(np.float32), r, g, next_q)
    # A masked step may hold padding such as -1.
    where = np.ones(actions.shape, bool)
    where[0, 0] = False
    assert np.isfinite(lossjax.policy_gradient_loss(logits, bad, adv, where=where))


def test_hyperparameter_errors():
    r, g, v, rho = _trajectory(seed=15, dtype=np.float32)
    with pytest.raises(ValueError, match="lambda_"):
        lossjax.generalized_advantage_estimation(r, g, v, lambda_=1.5)
    with pytest.raises(ValueError, match="lambda_"):
        lossjax.lambda_returns(r, g, v[1:], lambda_=np.ones(B + 1))
    for n in (0, 2.0, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            lossjax.n_step_returns(r, g, v[1:], n=n)
    with pytest.raises(ValueError, match="clip_rho_threshold"):
        lossjax.vtrace(v[:-1], v[1:], r, g, rho, clip_rho_threshold=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        lossjax.clipped_surrogate_loss(rho, r, epsilon=-0.1)
    with pytest.raises(ValueError, match="huber_delta"):
        lossjax.td_loss(r, r, g, r, huber_delta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        lossjax.entropy_loss(np.zeros((T, A), np.float32), reduction="avg")


def test_complex_trajectories_raise_for_the_estimators():
    # The losses' complex check is in the contract test; the estimators are exempt from it.
    r, g, v, rho = _trajectory(seed=16, dtype=np.float32)
    c = r.astype(np.complex64)
    with pytest.raises(ValueError, match="rewards has complex dtype"):
        lossjax.discounted_returns(c, g, 0.0)
    with pytest.raises(ValueError, match="rewards has complex dtype"):
        lossjax.lambda_returns(c, g, v[1:])
    with pytest.raises(ValueError, match="rewards has complex dtype"):
        lossjax.n_step_returns(c, g, v[1:], n=2)
    with pytest.raises(ValueError, match="rewards has complex dtype"):
        lossjax.generalized_advantage_estimation(c, g, v, lambda_=0.9)
    with pytest.raises(ValueError, match="rewards has complex dtype"):
        lossjax.vtrace(v[:-1], v[1:], c, g, rho)
