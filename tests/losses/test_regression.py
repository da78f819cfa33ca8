import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax
from tests import _reference as ref

REGRESSION = {
    "mse": (lossjax.mse, ref.mse, {}),
    "mae": (lossjax.mae, ref.mae, {}),
    "huber": (lossjax.huber, ref.huber, {"delta": 0.7}),
    "smooth_l1": (lossjax.smooth_l1, ref.smooth_l1, {"beta": 0.6}),
    "smooth_l1_beta0": (lossjax.smooth_l1, ref.smooth_l1, {"beta": 0.0}),
    "log_cosh": (lossjax.log_cosh, ref.log_cosh, {}),
}
SHAPES = [(7,), (3, 4), (2, 3, 5)]


def _pair(shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)


def test_textbook_example():
    value = lossjax.mse(jnp.array([0.8, 2.1, 3.2], jnp.float32),
                        jnp.array([1.0, 2, 3], jnp.float32))
    np.testing.assert_allclose(value, 0.03, rtol=1e-5)


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_numpy_reference_all_reductions(name, shape):
    loss, reference, opts = REGRESSION[name]
    p, t = _pair(shape)
    expected = reference(p, t, **opts)
    np.testing.assert_allclose(loss(p, t, reduction="none", **opts), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss(p, t, reduction="sum", **opts), expected.sum(), rtol=1e-5)
    np.testing.assert_allclose(loss(p, t, **opts), expected.mean(), rtol=1e-5)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p, t: lossjax.mse(p, t, reduction="none"), optax.squared_error),
        (lambda p, t: lossjax.huber(p, t, delta=0.5, reduction="none"),
         lambda p, t: optax.huber_loss(p, t, delta=0.5)),
        (lambda p, t: lossjax.log_cosh(p, t, reduction="none"), optax.log_cosh),
    ],
)
def test_matches_optax(ours, theirs):
    p, t = _pair((4, 6), seed=3)
    np.testing.assert_allclose(ours(p, t), theirs(p, t), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.usefixtures("x64")
def test_gradient_matches_finite_differences_in_float64(name):
    loss, _, opts = REGRESSION[name]
    p, t = _pair((3, 4), seed=1, dtype=np.float64)
    # move every error well away from the kinks at 0 and at +-delta/beta
    e = p - t
    e = np.where(np.abs(e) < 0.1, 0.3, e)
    e = np.where(np.abs(np.abs(e) - 0.7) < 0.05, 0.9, e)
    e = np.where(np.abs(np.abs(e) - 0.6) < 0.05, 0.9, e)
    p = t + e
    check_grads(lambda a, b: loss(a, b, **opts), (p, t), order=2, modes=["rev"], atol=1e-6,
                rtol=1e-6)


def test_subgradients_at_the_kinks():
    t = jnp.zeros(3)
    # MAE at e = 0 uses subgradient 0; Huber at |e| = delta is differentiable (slope delta)
    np.testing.assert_array_equal(jax.grad(lossjax.mae)(jnp.zeros(3), t), [0.0, 0.0, 0.0])
    at_kinks = jnp.array([0.5, -0.5, 0.0])
    g = jax.grad(lambda p: lossjax.huber(p, t, delta=0.5, reduction="sum"))(at_kinks)
    np.testing.assert_allclose(g, [0.5, -0.5, 0.0])
    g = jax.grad(lambda p: lossjax.smooth_l1(p, t, beta=0.5, reduction="sum"))(at_kinks)
    np.testing.assert_allclose(g, [1.0, -1.0, 0.0])


def test_log_cosh_is_finite_for_large_errors():
    p = jnp.array([1e3, -1e3, 5e3], jnp.float32)
    t = jnp.zeros(3, jnp.float32)
    value, grad = jax.value_and_grad(lambda a: lossjax.log_cosh(a, t, reduction="sum"))(p)
    np.testing.assert_allclose(value, ref.log_cosh(p, t).sum(), rtol=1e-6)
    np.testing.assert_allclose(grad, [1.0, -1.0, 1.0])


def test_masked_infinite_derivative_does_not_become_nan():
    @lossjax.elementwise_loss
    def sqrt_error(p, t):
        return jnp.sqrt(jnp.abs(p - t))  # derivative is infinite at p == t

    p = jnp.array([1.0, 2.0, 3.0])
    t = jnp.array([1.0, 0.0, 0.0])
    g = jax.grad(lambda a: sqrt_error(a, t, where=jnp.array([False, True, True])))(p)
    assert np.all(np.isfinite(g)) and g[0] == 0.0


@pytest.mark.usefixtures("x64")
def test_elementwise_loss_helper_builds_a_full_loss():
    @lossjax.elementwise_loss
    def quartic(p, t, *, scale=1.0):
        return scale * (p - t) ** 4

    p, t = _pair((3, 4))
    expected = 2.0 * (ref.f64(p) - ref.f64(t)) ** 4
    np.testing.assert_allclose(quartic(p, t, scale=2.0, reduction="sum"), expected.sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        quartic(p, t, reduction="avg")


def test_negative_delta_and_beta_raise():
    with pytest.raises(ValueError, match="delta"):
        lossjax.huber(jnp.zeros(2), jnp.zeros(2), delta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        lossjax.smooth_l1(jnp.zeros(2), jnp.zeros(2), beta=-0.5)




def test_huber_with_infinite_delta_is_half_the_squared_error():
    p = np.array([3.0, -0.5, 0.0], np.float32)
    t = np.zeros(3, np.float32)
    value, grad = jax.value_and_grad(lambda a: lossjax.huber(a, t, delta=np.inf))(p)
    np.testing.assert_allclose(value, np.mean(0.5 * p**2), rtol=1e-6)
    np.testing.assert_allclose(grad, p / 3, rtol=1e-6)


def test_smooth_l1_with_traced_beta_zero_is_l1():
    p = np.array([3.0, -0.5, 0.0], np.float32)
    t = np.zeros(3, np.float32)
    swept = jax.vmap(lambda b: lossjax.smooth_l1(p, t, beta=b))(jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(swept, [lossjax.mae(p, t), lossjax.smooth_l1(p, t)], rtol=1e-6)


def test_elementwise_loss_shows_its_full_signature():
    @lossjax.elementwise_loss
    def quartic(p, t, *, scale=1.0):
        return scale * (p - t) ** 4

    params = inspect.signature(quartic).parameters
    assert list(params) == ["p", "t", "scale", "weights", "where", "reduction"]
    assert params["reduction"].default == "mean"
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY
               for k in ("scale", "weights", "where", "reduction"))
