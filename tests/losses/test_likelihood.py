import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax

# ---------------------------------------------------------------- NumPy float64 references


def _np_stirling(t):
    t = np.asarray(t, np.float64)
    safe = np.where(t > 1, t, 2.0)
    return np.where(t > 1, safe * np.log(safe) - safe + 0.5 * np.log(2 * np.pi * safe), 0.0)


def _np_poisson(x, t, log_input=True, full=False, eps=1e-8):
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    loss = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    return loss + _np_stirling(t) if full else loss


def _np_gaussian(mu, y, var, full=False, eps=1e-6):
    mu, y = np.asarray(mu, np.float64), np.asarray(y, np.float64)
    v = np.maximum(np.asarray(var, np.float64), eps)
    loss = 0.5 * (np.log(v) + (mu - y) ** 2 / v)
    return loss + 0.5 * np.log(2 * np.pi) if full else loss


def _counts(shape, seed, dtype=np.float64):
    """Log-rates, rates and Poisson counts (some 0, some 1, larger ones)."""
    rng = np.random.default_rng(seed)
    log_rate = rng.normal(size=shape)
    t = rng.poisson(2.0, size=shape).astype(np.float64)
    return log_rate.astype(dtype), np.exp(log_rate).astype(dtype), t.astype(dtype)


def _gaussian_batch(shape, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    mu, y = rng.normal(size=shape), rng.normal(size=shape)
    var = rng.uniform(0.2, 2.0, size=shape)
    return mu.astype(dtype), y.astype(dtype), var.astype(dtype)


SHAPES = [(7,), (3, 4), (2, 3, 2)]


# ---------------------------------------------------------------- poisson_nll


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.usefixtures("x64")
def test_poisson_matches_numpy_all_reductions(shape, log_input, full):
    log_rate, rate, t = _counts(shape, seed=0)
    x = log_rate if log_input else rate
    expected = _np_poisson(x, t, log_input, full)
    opts = dict(log_input=log_input, full=full)
    np.testing.assert_allclose(lossjax.poisson_nll(x, t, reduction="none", **opts), expected,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lossjax.poisson_nll(x, t, reduction="sum", **opts),
                               expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(lossjax.poisson_nll(x, t, **opts), expected.mean(), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_poisson_textbook_values():
    # rate 2, count 3: 2 − 3·log 2; log-rate 0, count 1: exp(0) − 0 = 1.
    np.testing.assert_allclose(
        lossjax.poisson_nll(jnp.array([2.0]), jnp.array([3.0]), log_input=False, eps=0.5),
        2 - 3 * math.log(2.5))
    np.testing.assert_allclose(lossjax.poisson_nll(jnp.array([0.0]), jnp.array([1.0])), 1.0)
    # full adds log 3! ≈ Stirling's 3 log 3 − 3 + ½ log 6π; t = 1 gets no term.
    np.testing.assert_allclose(
        lossjax.poisson_nll(jnp.array([0.0, 0.0]), jnp.array([3.0, 1.0]), full=True,
                            reduction="none"),
        [1 - 0 + 3 * math.log(3) - 3 + 0.5 * math.log(6 * math.pi), 1.0], rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_poisson_matches_optax_generalized_kl():
    # Σ_k [exp(x) − t·x] + Σ_k [t·log t − t] = optax's generalized KL with log-predictions x.
    log_rate, _, _ = _counts((3, 5), seed=1)
    t = np.random.default_rng(2).uniform(0.1, 4.0, size=(3, 5))
    ours = lossjax.poisson_nll(log_rate, t, reduction="none").sum(-1) + (t * np.log(t) - t).sum(-1)
    np.testing.assert_allclose(
        ours, optax.losses.generalized_kl_divergence(jnp.asarray(log_rate), jnp.asarray(t)),
        rtol=1e-10)


@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.usefixtures("x64")
def test_poisson_gradients_match_finite_differences_in_float64(log_input, full):
    log_rate, rate, _ = _counts((3, 4), seed=3)
    # Targets away from t = 1, where the full=True Stirling term switches on.
    t = np.random.default_rng(4).uniform(1.5, 5.0, size=(3, 4))
    x = log_rate if log_input else rate
    check_grads(lambda a, b: lossjax.poisson_nll(a, b, log_input=log_input, full=full),
                (x, t), order=2, modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_poisson_gradients_match_analytic():
    log_rate, rate, t = _counts((2, 5), seed=5)
    gx, gt = jax.grad(lambda a, b: lossjax.poisson_nll(a, b, reduction="sum"),
                      argnums=(0, 1))(log_rate, t)
    np.testing.assert_allclose(gx, np.exp(log_rate) - t, rtol=1e-12)
    np.testing.assert_allclose(gt, -log_rate, rtol=1e-12)
    gx, gt = jax.grad(lambda a, b: lossjax.poisson_nll(a, b, log_input=False, eps=1e-3,
                                                       reduction="sum"),
                      argnums=(0, 1))(rate, t)
    np.testing.assert_allclose(gx, 1 - t / (rate + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(gt, -np.log(rate + 1e-3), rtol=1e-12)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.usefixtures("x64")
def test_poisson_rate_zero_and_count_zero_are_finite(full):
    rate = jnp.array([0.0, 0.0, 1.5, 0.0])
    t = jnp.array([3.0, 0.0, 0.0, 1.0])
    value, (gx, gt) = jax.value_and_grad(
        lambda a, b: lossjax.poisson_nll(a, b, log_input=False, full=full, reduction="sum"),
        argnums=(0, 1))(rate, t)
    np.testing.assert_allclose(value, _np_poisson(rate, t, False, full).sum(), rtol=1e-12)
    assert np.isfinite(value) and np.all(np.isfinite(gx)) and np.all(np.isfinite(gt))
    np.testing.assert_allclose(gx, 1 - np.asarray(t) / (np.asarray(rate) + 1e-8), rtol=1e-12)
    # log-input with t = 0: exp(x), gradient exp(x) in x and −x in t.
    x = jnp.array([-2.0, 0.0, 3.0])
    value, (gx, gt) = jax.value_and_grad(
        lambda a, b: lossjax.poisson_nll(a, b, full=full, reduction="sum"),
        argnums=(0, 1))(x, jnp.zeros(3))
    np.testing.assert_allclose(value, np.exp(x).sum(), rtol=1e-12)
    np.testing.assert_allclose(gx, np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(gt, -np.asarray(x), rtol=1e-12)


def test_poisson_negative_rate_is_nan():
    assert np.isnan(lossjax.poisson_nll(jnp.array([-1.0]), jnp.array([2.0]), log_input=False))


@pytest.mark.usefixtures("x64")
def test_poisson_bad_input_raises():
    x = jnp.zeros(3)
    with pytest.raises(ValueError, match="eps"):
        lossjax.poisson_nll(x, x, eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        lossjax.poisson_nll(x, x, eps=-1e-8)
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        lossjax.poisson_nll(x, jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="reduction"):
        lossjax.poisson_nll(x, x, reduction="avg")


# ---------------------------------------------------------------- gaussian_nll


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.usefixtures("x64")
def test_gaussian_matches_numpy_all_reductions(shape, full):
    mu, y, var = _gaussian_batch(shape, seed=10)
    expected = _np_gaussian(mu, y, var, full)
    np.testing.assert_allclose(lossjax.gaussian_nll(mu, y, var, full=full, reduction="none"),
                               expected, rtol=1e-12)
    np.testing.assert_allclose(lossjax.gaussian_nll(mu, y, var, full=full, reduction="sum"),
                               expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(lossjax.gaussian_nll(mu, y, var, full=full), expected.mean(),
                               rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_gaussian_textbook_value():
    # N(y; 1, 4) at y = 3: ½ log(2π·4) + (2²)/(2·4).
    np.testing.assert_allclose(
        lossjax.gaussian_nll(jnp.array([1.0]), jnp.array([3.0]), jnp.array([4.0]), full=True),
        0.5 * math.log(2 * math.pi * 4) + 0.5, rtol=1e-12)


@pytest.mark.parametrize("var_shape", [(3, 1), (1, 4), (4,), ()])
@pytest.mark.usefixtures("x64")
def test_gaussian_broadcast_variance(var_shape):
    mu, y, _ = _gaussian_batch((3, 4), seed=11)
    var = np.random.default_rng(12).uniform(0.3, 2, size=var_shape)
    out = lossjax.gaussian_nll(mu, y, var, reduction="none")
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, _np_gaussian(mu, y, var), rtol=1e-12)
    check_grads(lambda m, v: lossjax.gaussian_nll(m, y, v), (mu, var), order=2, modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_gaussian_gradients_match_finite_differences_in_float64():
    mu, y, var = _gaussian_batch((3, 4), seed=13)
    check_grads(lambda m, t, v: lossjax.gaussian_nll(m, t, v, full=True), (mu, y, var),
                order=2, modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_gaussian_gradients_match_analytic():
    mu, y, var = _gaussian_batch((2, 3), seed=14)
    gm, gy, gv = jax.grad(lambda m, t, v: lossjax.gaussian_nll(m, t, v, reduction="sum"),
                          argnums=(0, 1, 2))(mu, y, var)
    np.testing.assert_allclose(gm, (mu - y) / var, rtol=1e-12)
    np.testing.assert_allclose(gy, -(mu - y) / var, rtol=1e-12)
    np.testing.assert_allclose(gv, 0.5 * (1 / var - (mu - y) ** 2 / var**2), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_gaussian_zero_variance_is_clamped_with_straight_through_gradient():
    eps = 1e-6
    mu = jnp.array([0.5, 0.0, 1e-4])
    y = jnp.array([0.0, 0.0, 0.0])
    var = jnp.array([0.0, 0.0, 1e-9])  # all below eps
    value, (gm, gv) = jax.value_and_grad(
        lambda m, v: lossjax.gaussian_nll(m, y, v, eps=eps, reduction="sum"),
        argnums=(0, 1))(mu, var)
    np.testing.assert_allclose(value, _np_gaussian(mu, y, var, eps=eps).sum(), rtol=1e-12)
    assert np.isfinite(value) and np.all(np.isfinite(gm)) and np.all(np.isfinite(gv))
    # PyTorch's clamp: value at v = eps, gradient in var as if unclamped (not 0).
    e2 = np.asarray(mu) ** 2
    np.testing.assert_allclose(gm, np.asarray(mu) / eps, rtol=1e-12)
    np.testing.assert_allclose(gv, 0.5 * (1 / eps - e2 / eps**2), rtol=1e-12)


def test_gaussian_negative_variance_is_nan():
    out = lossjax.gaussian_nll(jnp.zeros(3), jnp.ones(3), jnp.array([1.0, -1.0, 0.0]),
                               reduction="none")
    assert np.isnan(out[1]) and np.isfinite(out[0]) and np.isfinite(out[2])


@pytest.mark.usefixtures("x64")
def test_gaussian_weights_and_where():
    mu, y, var = _gaussian_batch((3, 4), seed=15)
    expected = _np_gaussian(mu, y, var)
    w = np.array([1.0, 0.5, 2.0, 3.0])
    m = np.array([[True, True, False, True], [False, True, True, True], [True] * 4])
    np.testing.assert_allclose(lossjax.gaussian_nll(mu, y, var, weights=w, reduction="sum"),
                               (w * expected).sum(), rtol=1e-12)
    np.testing.assert_allclose(lossjax.gaussian_nll(mu, y, var, weights=w, where=m),
                               (w * expected)[m].sum() / m.sum(), rtol=1e-12)
    # Masked entries with a negative variance: no NaN, exactly zero gradient.
    bad = var.copy()
    bad[~m] = -1.0
    value, grads = jax.value_and_grad(
        lambda a, b, c: lossjax.gaussian_nll(a, b, c, where=m), argnums=(0, 1, 2))(mu, y, bad)
    np.testing.assert_allclose(value, expected[m].mean(), rtol=1e-12)
    for g in grads:
        assert np.all(g[~m] == 0) and np.all(np.isfinite(g))
    assert np.all(grads[2][m] != 0)


def test_gaussian_bad_input_raises():
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="eps"):
        lossjax.gaussian_nll(x, x, x, eps=0.0)
    with pytest.raises(ValueError, match=r"means has shape \(2, 3\).*\(3, 2\)"):
        lossjax.gaussian_nll(x, jnp.zeros((3, 2)), x)
    with pytest.raises(ValueError, match=r"variances has shape \(2,\).*\(2, 3\)"):
        lossjax.gaussian_nll(x, x, jnp.ones(2))  # PyTorch's dropped last dim: use [..., None]
    with pytest.raises(ValueError, match=r"variances has shape \(2, 3, 1\)"):
        lossjax.gaussian_nll(x, x, jnp.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="reduction"):
        lossjax.gaussian_nll(x, x, x, reduction="batchmean")
    with pytest.raises(ValueError, match="boolean"):
        lossjax.gaussian_nll(x, x, x, where=jnp.ones((2, 3)))
