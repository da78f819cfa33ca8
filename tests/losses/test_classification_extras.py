"""poly1_cross_entropy, sparsemax / sparsemax_loss and categorical_hinge."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax
from tests import _reference as ref


def _scores(shape, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    x = scale * rng.normal(size=shape)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    return x, y


@pytest.mark.parametrize("epsilon", [-1.0, 0.0, 1.0, 2.0])
@pytest.mark.parametrize("shape", [(7,), (5, 4), (2, 3, 6)])
@pytest.mark.usefixtures("x64")
def test_poly1_matches_numpy_and_optax(epsilon, shape):
    x, y = _scores(shape)
    soft = np.random.default_rng(1).dirichlet(np.ones(shape[-1]), size=shape[:-1])
    for t in (jax.nn.one_hot(y, shape[-1], dtype=jnp.float64), soft):
        got = lossjax.poly1_cross_entropy(x, t, epsilon=epsilon, reduction="none")
        np.testing.assert_allclose(got, ref.poly1(x, t, epsilon), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, optax.losses.poly_loss_cross_entropy(
            x, t, epsilon=epsilon), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lossjax.poly1_cross_entropy(x, t, epsilon=epsilon),
                                   ref.poly1(x, t, epsilon).mean(), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_poly1_with_zero_epsilon_is_cross_entropy_and_gradient_matches_formula():
    x, y = _scores((6, 5), seed=2)
    t = jax.nn.one_hot(y, 5, dtype=jnp.float64)
    np.testing.assert_allclose(lossjax.poly1_cross_entropy(x, t, epsilon=0.0),
                               lossjax.softmax_cross_entropy(x, t), rtol=1e-12)
    check_grads(lambda z: lossjax.poly1_cross_entropy(z, t, epsilon=1.5), (x,), order=2,
                modes=["rev"])
    # d/dx [CE + e(1 - p_y)] = (p - t) - e * p_y * (t - p), from the softmax Jacobian.
    p = ref.softmax(x)
    p_y = np.sum(p * t, -1, keepdims=True)
    expected = ((p - t) - 1.5 * p_y * (t - p)) / x.shape[0]
    got = jax.grad(lambda z: lossjax.poly1_cross_entropy(z, t, epsilon=1.5))(x)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_poly1_axis_and_extreme_logits():
    x, y = _scores((4, 6), seed=3)
    t = np.asarray(jax.nn.one_hot(y, 6, dtype=jnp.float64))
    np.testing.assert_allclose(
        lossjax.poly1_cross_entropy(x.T, t.T, axis=0, reduction="none"),
        lossjax.poly1_cross_entropy(x, t, reduction="none"), rtol=1e-12)
    big = jnp.array([[1e4, -1e4, 0.0], [-jnp.inf, 0.0, 1.0]], jnp.float32)
    lab = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], jnp.float32)
    value, grad = jax.value_and_grad(lossjax.poly1_cross_entropy)(big, lab)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("shape", [(5,), (8, 6), (2, 3, 4)])
@pytest.mark.usefixtures("x64")
def test_sparsemax_is_the_simplex_projection(shape):
    z, _ = _scores(shape, seed=4)
    p = lossjax.sparsemax(z)
    np.testing.assert_allclose(p, ref.sparsemax(z), atol=1e-12)
    np.testing.assert_allclose(np.sum(p, -1), 1.0, rtol=1e-12)
    assert np.all(np.asarray(p) >= 0)
    np.testing.assert_allclose(lossjax.sparsemax(np.moveaxis(z, -1, 0), axis=0),
                               np.moveaxis(np.asarray(p), -1, 0), atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 7)])
@pytest.mark.usefixtures("x64")
def test_sparsemax_loss_matches_numpy_and_optax(shape):
    z, y = _scores(shape, seed=5)
    got = lossjax.sparsemax_loss(z, y, reduction="none")
    np.testing.assert_allclose(got, ref.sparsemax_loss(z, y), rtol=1e-10, atol=1e-12)
    flat = optax.losses.multiclass_sparsemax_loss(z.reshape(-1, shape[-1]), y.reshape(-1))
    np.testing.assert_allclose(got, np.asarray(flat).reshape(shape[:-1]), rtol=1e-10,
                               atol=1e-12)
    assert np.all(np.asarray(got) >= -1e-12)


@pytest.mark.usefixtures("x64")
def test_sparsemax_loss_gradient_is_sparsemax_minus_one_hot():
    z, y = _scores((6, 5), seed=6)
    got = jax.grad(lambda s: lossjax.sparsemax_loss(s, y, reduction="sum"))(z)
    expected = ref.sparsemax(z) - np.eye(5)[y]
    np.testing.assert_allclose(got, expected, atol=1e-10)
    check_grads(lambda s: lossjax.sparsemax_loss(s, y), (z,), order=1, modes=["rev"])


def test_sparsemax_loss_zero_at_confident_label_nan_out_of_range_and_half_input():
    z = jnp.array([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    got = lossjax.sparsemax_loss(z, jnp.array([0, 3]), reduction="none")
    assert got[0] == 0.0 and np.isnan(got[1])
    v = lossjax.sparsemax_loss(jnp.asarray(z, jnp.bfloat16), jnp.array([0, 1]))
    assert v.dtype == jnp.float32 and np.isfinite(v)
    big = jnp.array([[1e4, -1e4, 0.0]], jnp.float32)
    value, grad = jax.value_and_grad(lossjax.sparsemax_loss)(big, jnp.array([1]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.usefixtures("x64")
def test_categorical_hinge_matches_keras_definition():
    # The example in Keras' CategoricalHinge docstring: per-example losses [1.2, 1.6].
    s = np.array([[0.6, 0.4], [0.4, 0.6]])
    t = np.array([[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(lossjax.categorical_hinge(s, t, reduction="none"), [1.2, 1.6],
                               rtol=1e-12)
    x, y = _scores((7, 4), seed=7)
    t = np.eye(4)[y]
    np.testing.assert_allclose(lossjax.categorical_hinge(x, t, reduction="none"),
                               ref.categorical_hinge(x, t), rtol=1e-12)
    np.testing.assert_allclose(lossjax.categorical_hinge(x, t, reduction="sum"),
                               ref.categorical_hinge(x, t).sum(), rtol=1e-12)
    np.testing.assert_allclose(lossjax.categorical_hinge(x.T, t.T, axis=0, reduction="none"),
                               ref.categorical_hinge(x, t), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_categorical_hinge_gradient():
    x, y = _scores((7, 4), seed=8, scale=0.3)
    t = np.eye(4)[y]
    # Away from the kink and ties, where the hinge is active:
    # d/ds = onehot(argmax((1 - t) s)) * (1 - t) - t (the true class's slot has slope 0).
    got = jax.grad(lambda s: lossjax.categorical_hinge(s, t, reduction="sum"))(x)
    neg = (1 - t) * x
    active = ref.categorical_hinge(x, t) > 0
    expected = (np.eye(4)[np.argmax(neg, -1)] * (1 - t) - t) * active[:, None]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    check_grads(lambda s: lossjax.categorical_hinge(s, t), (x,), order=1, modes=["rev"])


def test_classification_extras_bad_input_raises():
    x, y = _scores((3, 4))
    with pytest.raises(ValueError, match="epsilon"):
        lossjax.poly1_cross_entropy(x, np.eye(4)[y], epsilon=-2.0)
    with pytest.raises(ValueError, match="integer"):
        lossjax.sparsemax_loss(x, np.eye(4)[y])
    with pytest.raises(ValueError, match="labels has shape"):
        lossjax.sparsemax_loss(x, y[:2])


@pytest.mark.parametrize("q", [0.1, 0.5, 1.0])
@pytest.mark.usefixtures("x64")
def test_generalized_cross_entropy_matches_numpy(q):
    x, y = _scores((6, 5), seed=11)
    p_y = ref.softmax(x)[np.arange(6), y]
    expected = (1 - p_y**q) / q
    got = lossjax.generalized_cross_entropy(x, y, q=q, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    check_grads(lambda s: lossjax.generalized_cross_entropy(s, y, q=q), (x,), order=2,
                modes=["rev"])
    # d/dx of -(p_y^q)/q = -p_y^q (onehot - p)
    grad = jax.grad(lambda s: lossjax.generalized_cross_entropy(s, y, q=q, reduction="sum"))(x)
    np.testing.assert_allclose(grad, -(p_y**q)[:, None] * (np.eye(5)[y] - ref.softmax(x)),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_generalized_cross_entropy_limits_and_contract():
    x, y = _scores((6, 5), seed=12)
    np.testing.assert_allclose(lossjax.generalized_cross_entropy(x, y, q=1e-8),
                               lossjax.softmax_cross_entropy_with_integer_labels(x, y),
                               rtol=1e-6)
    m = np.array([True, False, True, True, False, True])
    per = np.asarray(lossjax.generalized_cross_entropy(x, y, reduction="none"))
    np.testing.assert_allclose(lossjax.generalized_cross_entropy(x, y, where=m), per[m].mean(),
                               rtol=1e-12)
    assert np.isnan(lossjax.generalized_cross_entropy(x[:1], np.array([9]), reduction="none")[0])
    big = jnp.array([[1e4, -1e4, 0.0]], jnp.float32)
    value, grad = jax.value_and_grad(lossjax.generalized_cross_entropy)(big, jnp.array([1]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert lossjax.generalized_cross_entropy(jnp.asarray(x, jnp.bfloat16), y).dtype == jnp.float32
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="q must"):
            lossjax.generalized_cross_entropy(x, y, q=bad)


@pytest.mark.usefixtures("x64")
def test_sparsemax_jacobian_and_loss_hessian_are_the_closed_form():
    z, y = _scores((4, 7), seed=13)
    for row, label in zip(z, y, strict=True):
        support = (ref.sparsemax(row) > 0).astype(np.float64)
        expected = np.diag(support) - np.outer(support, support) / support.sum()
        np.testing.assert_allclose(jax.jacfwd(lossjax.sparsemax)(row), expected, atol=1e-12)
        np.testing.assert_allclose(jax.jacrev(lossjax.sparsemax)(row), expected, atol=1e-12)
        hessian = jax.hessian(lambda s, lab=label: lossjax.sparsemax_loss(
            s[None], jnp.array([lab]), reduction="sum"))(row)
        np.testing.assert_allclose(hessian, expected, atol=1e-12)
