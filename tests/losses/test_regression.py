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


@pytest.mark.parametrize("name", REGRESSION)
def test_weights_and_where_compose(name):
    loss, reference, opts = REGRESSION[name]
    p, t = _pair((4, 5), seed=2)
    w = np.random.default_rng(0).uniform(size=(4, 5)).astype(np.float32)
    m = np.random.default_rng(1).uniform(size=(4, 5)) > 0.4
    expected = reference(p, t, **opts) * w
    np.testing.assert_allclose(loss(p, t, weights=w, where=m, reduction="sum", **opts),
                               expected[m].sum(), rtol=1e-5)
    np.testing.assert_allclose(loss(p, t, weights=w, where=m, **opts), expected[m].mean(),
                               rtol=1e-5)
    # masked mean equals the mean over the sliced arrays
    np.testing.assert_allclose(loss(p, t, where=m, **opts), loss(p[m], t[m], **opts), rtol=1e-6)


def test_masked_entries_get_exactly_zero_gradient_and_empty_mask_gives_zero():
    p, t = _pair((6,))
    m = np.array([True, False, True, False, True, False])
    g = jax.grad(lambda a: lossjax.mse(a, t, where=m))(p)
    assert np.all(np.asarray(g)[~m] == 0.0)
    assert np.all(np.asarray(g)[m] != 0.0)
    empty = np.zeros(6, bool)
    assert float(lossjax.mse(p, t, where=empty)) == 0.0
    assert np.all(np.asarray(jax.grad(lambda a: lossjax.mse(a, t, where=empty))(p)) == 0.0)


def test_masked_infinite_derivative_does_not_become_nan():
    @lossjax.elementwise_loss
    def sqrt_error(p, t):
        return jnp.sqrt(jnp.abs(p - t))  # derivative is infinite at p == t

    p = jnp.array([1.0, 2.0, 3.0])
    t = jnp.array([1.0, 0.0, 0.0])
    g = jax.grad(lambda a: sqrt_error(a, t, where=jnp.array([False, True, True])))(p)
    assert np.all(np.isfinite(g)) and g[0] == 0.0


def test_elementwise_loss_helper_builds_a_full_loss():
    @lossjax.elementwise_loss
    def quartic(p, t, *, scale=1.0):
        return scale * (p - t) ** 4

    p, t = _pair((3, 4))
    expected = 2.0 * (ref.f64(p) - ref.f64(t)) ** 4
    np.testing.assert_allclose(quartic(p, t, scale=2.0, reduction="sum"), expected.sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="reduction"):
        quartic(p, t, reduction="avg")


@pytest.mark.parametrize("name", REGRESSION)
def test_bad_input_raises(name):
    loss, _, opts = REGRESSION[name]
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\)"):
        loss(jnp.zeros(4), jnp.zeros((4, 1)), **opts)
    with pytest.raises(ValueError, match="'mean', 'sum', 'none'"):
        loss(jnp.zeros(4), jnp.zeros(4), reduction="batchmean", **opts)
    with pytest.raises(ValueError, match="weights"):
        loss(jnp.zeros(4), jnp.zeros(4), weights=jnp.ones((4, 4)), **opts)
    with pytest.raises(ValueError, match="where"):
        loss(jnp.zeros(4), jnp.zeros(4), where=jnp.ones(4), **opts)


def test_negative_delta_and_beta_raise():
    with pytest.raises(ValueError, match="delta"):
        lossjax.huber(jnp.zeros(2), jnp.zeros(2), delta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        lossjax.smooth_l1(jnp.zeros(2), jnp.zeros(2), beta=-0.5)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", REGRESSION)
def test_half_precision_inputs_compute_in_float32(name, dtype):
    loss, reference, opts = REGRESSION[name]
    p, t = _pair((64,), seed=5)
    p_half, t_half = jnp.asarray(p, dtype), jnp.asarray(t, dtype)
    value = loss(p_half, t_half, **opts)
    assert value.dtype == jnp.float32
    expected = reference(np.asarray(p_half, np.float64), np.asarray(t_half, np.float64),
                         **opts).mean()
    np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize("name", REGRESSION)
def test_jit_and_vmap_agree_with_eager(name):
    loss, _, opts = REGRESSION[name]
    p, t = _pair((3, 5), seed=4)
    eager = loss(p, t, reduction="none", **opts).mean(axis=1)
    jitted = jax.jit(lambda a, b: loss(a, b, **opts))
    batched = jax.vmap(jitted)(p, t)
    np.testing.assert_allclose(batched, eager, rtol=1e-6)
