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
        np.testing.assert_allclose(
            lossjax.generalized_advantage_estimation(r, g, v, lambda_=lam),
            ref_gae(r, g, v, lam), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            lossjax.lambda_returns(r, g, v[1:], lambda_=lam), ref_lambda(r, g, v[1:], lam),
            rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            lossjax.vtrace(v[:-1], v[1:], r, g, rho, lambda_=lam, clip_rho_threshold=1.3),
            ref_vtrace(v[:-1], v[1:], r, g, rho, lam, 1.3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, T, T + 4])
def test_n_step_and_discounted_returns_match_numpy_reference_in_float64(n):
    r, g, v, _ = _trajectory(seed=1)
    with jax.enable_x64(True):
        np.testing.assert_allclose(lossjax.n_step_returns(r, g, v[1:], n=n),
                                   ref_n_step(r, g, v[1:], n), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lossjax.discounted_returns(r, g, v[-1]),
                                   ref_discounted(r, g, v[-1]), rtol=1e-12, atol=1e-12)


def test_hand_computed_gae_with_an_episode_end():
    # Step 1 ends the episode: its advantage ignores the values after it.
    adv = lossjax.generalized_advantage_estimation(
        jnp.array([1.0, 1.0, 0.0], jnp.float32), jnp.array([1.0, 0.0, 1.0], jnp.float32),
        jnp.array([0.0, 0.0, 5.0, 7.0], jnp.float32), lambda_=1.0)
    np.testing.assert_allclose(adv, [2.0, 1.0, 2.0])


def _rlax_returns(name, r, g, v, rho, lam):
    """(lossjax function, rlax function for one trajectory, its float arguments)."""
    return {
        "gae": (lambda r, g, v: lossjax.generalized_advantage_estimation(r, g, v, lambda_=lam),
                lambda r, g, v: rlax.truncated_generalized_advantage_estimation(r, g, lam, v),
                (r, g, v)),
        "lambda": (lambda r, g, v: lossjax.lambda_returns(r, g, v, lambda_=lam),
                   lambda r, g, v: rlax.lambda_returns(r, g, v, lam), (r, g, v[1:])),
        "n_step": (lambda r, g, v: lossjax.n_step_returns(r, g, v, n=3),
                   lambda r, g, v: rlax.n_step_bootstrapped_returns(r, g, v, 3), (r, g, v[1:])),
        "discounted": (lossjax.discounted_returns,
                       lambda r, g, v: rlax.discounted_returns(r, g, v), (r, g, v[-1])),
        "vtrace": (lambda v, vn, r, g, rho: lossjax.vtrace(v, vn, r, g, rho, lambda_=lam),
                   lambda v, vn, r, g, rho: rlax.vtrace(v, vn, r, g, rho, lam),
                   (v[:-1], v[1:], r, g, rho)),
    }[name]


def _value_and_grads(fn, args, cotangent):
    """fn(*args) and the gradient of Σ cotangent · fn(*args) with respect to every input."""
    grad = jax.grad(lambda *a: jnp.sum(fn(*a) * cotangent), argnums=tuple(range(len(args))))
    return jax.jit(lambda *a: (fn(*a), grad(*a)))(*args)


RETURNS = ("gae", "lambda", "vtrace", "n_step", "discounted")
# Every λ in float64 on a batch; one trajectory and float32 at λ = 0.95.
RLAX_CASES = (
    [(name, lam, True, np.float64) for name in RETURNS[:3] for lam in LAMBDAS]
    + [(name, 1.0, True, np.float64) for name in RETURNS[3:]]
    + [(name, 0.95, batched, dtype) for name in RETURNS
       for batched, dtype in ((False, np.float64), (True, np.float32))]
)


@pytest.mark.parametrize("name, lam, batched, dtype", RLAX_CASES)
def test_returns_values_and_gradients_match_rlax(name, lam, batched, dtype):
    r, g, v, rho = _trajectory(seed=2, batch=(B,) if batched else (), dtype=dtype)
    ours, theirs, args = _rlax_returns(name, r, g, v, rho, lam)
    if batched:
        theirs = jax.vmap(theirs, in_axes=tuple(0 if a.ndim == 1 else 1 for a in args),
                          out_axes=1)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    cotangent = np.random.default_rng(3).normal(size=r.shape).astype(dtype)
    with jax.enable_x64(dtype == np.float64):
        args = tuple(jnp.asarray(a) for a in args)
        out, grads = _value_and_grads(ours, args, cotangent)
        want, want_grads = _value_and_grads(theirs, args, cotangent)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, want, **tol)
        for got, expected in zip(grads, want_grads, strict=True):
            np.testing.assert_allclose(got, expected, **tol)
