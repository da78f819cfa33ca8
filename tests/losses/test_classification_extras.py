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
    np.testing.assert_allclose(*jax.jit(lambda x: (  # one compiled program
        lossjax.poly1_cross_entropy(x, t, epsilon=0.0),
        lossjax.softmax_cross_entropy(x, t)))(x), rtol=1e-12)
    poly1 = jax.jit(lambda z: lossjax.poly1_cross_entropy(z, t, epsilon=1.5))  # not op by op
    check_grads(poly1, (x,), order=2, modes=["rev"])
    # d/dx [CE + e(1 - p_y)] = (p - t) - e * p_y * (t - p), from the softmax Jacobian.
    p = ref.softmax(x)
    p_y = np.sum(p * t, -1, keepdims=True)
    expected = ((p - t) - 1.5 * p_y * (t - p)) / x.shape[0]
    got = jax.jit(jax.grad(poly1))(x)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_poly1_axis_and_extreme_logits():
    x, y = _scores((4, 6), seed=3)
    t = np.asarray(jax.nn.one_hot(y, 6, dtype=jnp.float64))
    np.testing.assert_allclose(*jax.jit(lambda x, t: (  # one compiled program
        lossjax.poly1_cross_entropy(x.T, t.T, axis=0, reduction="none"),
        lossjax.poly1_cross_entropy(x, t, reduction="none")))(x, t), rtol=1e-12)
    big = jnp.array([[1e4, -1e4, 0.0], [-jnp.inf, 0.0, 1.0]], jnp.float32)
    lab = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], jnp.float32)
    value, grad = jax.jit(jax.value_and_grad(lossjax.poly1_cross_entropy))(big, lab)
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
    got, flat = jax.jit(lambda z, y: (  # ours and optax's in one program, not op by op
        lossjax.sparsemax_loss(z, y, reduction="none"),
        optax.losses.multiclass_sparsemax_loss(z.reshape(-1, shape[-1]), y.reshape(-1))))(z, y)
    np.testing.assert_allclose(got, ref.sparsemax_loss(z, y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, np.asarray(flat).reshape(shape[:-1]), rtol=1e-10,
                               atol=1e-12)
    assert np.all(np.asarray(got) >= -1e-12)


@pytest.mark.usefixtures("x64")
def test_sparsemax_loss_gradient_is_sparsemax_minus_one_hot():
    z, y = _scores((6, 5), seed=6)
    got = jax.jit(jax.grad(lambda s: lossjax.sparsemax_loss(s, y, reduction="sum")))(z)
    expected = ref.sparsemax(z) - np.eye(5)[y]
    np.testing.assert_allclose(got, expected, atol=1e-10)
    check_grads(jax.jit(lambda s: lossjax.sparsemax_loss(s, y)), (z,), order=1, modes=["rev"])


def test_sparsemax_loss_zero_at_confident_label_nan_out_of_range_and_half_input():
    z = jnp.array([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    big = jnp.array([[1e4, -1e4, 0.0]], jnp.float32)

    @jax.jit  # one compiled program, not op by op
    def losses(z, big):
        return (lossjax.sparsemax_loss(z, jnp.array([0, 3]), reduction="none"),
                lossjax.sparsemax_loss(jnp.asarray(z, jnp.bfloat16), jnp.array([0, 1])),
                jax.value_and_grad(lossjax.sparsemax_loss)(big, jnp.array([1])))

    got, v, (value, grad) = losses(z, big)
    assert got[0] == 0.0 and np.isnan(got[1])
    assert v.dtype == jnp.float32 and np.isfinite(v)
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


# Jitted with q as an argument: the q cases share one compilation of each function and of
# the derivatives check_grads takes, where eagerly every operation compiles on its own.
_gce_mean = jax.jit(lambda s, y, q: lossjax.generalized_cross_entropy(s, y, q=q))


@jax.jit
def _gce_none_and_grad_of_sum(x, y, q):
    return (lossjax.generalized_cross_entropy(x, y, q=q, reduction="none"),
            jax.grad(lambda s: lossjax.generalized_cross_entropy(s, y, q=q, reduction="sum"))(x))


@pytest.mark.parametrize("q", [0.1, 0.5, 1.0])
@pytest.mark.usefixtures("x64")
def test_generalized_cross_entropy_matches_numpy(q):
    x, y = _scores((6, 5), seed=11)
    p_y = ref.softmax(x)[np.arange(6), y]
    expected = (1 - p_y**q) / q
    got, grad = _gce_none_and_grad_of_sum(x, y, q)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    check_grads(lambda s: _gce_mean(s, y, q), (x,), order=2, modes=["rev"])
    # d/dx of -(p_y^q)/q = -p_y^q (onehot - p)
    np.testing.assert_allclose(grad, -(p_y**q)[:, None] * (np.eye(5)[y] - ref.softmax(x)),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_generalized_cross_entropy_limits_and_contract():
    x, y = _scores((6, 5), seed=12)
    m = np.array([True, False, True, True, False, True])
    big = jnp.array([[1e4, -1e4, 0.0]], jnp.float32)

    @jax.jit  # every value and the gradient in one compiled program
    def losses(x, y, big):
        gce = lossjax.generalized_cross_entropy
        return (gce(x, y, q=1e-8), lossjax.softmax_cross_entropy_with_integer_labels(x, y),
                gce(x, y, reduction="none"), gce(x, y, where=m),
                gce(x[:1], np.array([9]), reduction="none"),
                jax.value_and_grad(gce)(big, jnp.array([1])))

    small_q, cross_entropy, per, masked, bad_label, (value, grad) = losses(x, y, big)
    np.testing.assert_allclose(small_q, cross_entropy, rtol=1e-6)
    per = np.asarray(per)
    np.testing.assert_allclose(masked, per[m].mean(), rtol=1e-12)
    assert np.isnan(bad_label[0])
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    # (the output dtype from tracing alone: nothing to compile)
    assert jax.eval_shape(lossjax.generalized_cross_entropy, jnp.asarray(x, jnp.bfloat16),
                          y).dtype == jnp.float32
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="q must"):
            lossjax.generalized_cross_entropy(x, y, q=bad)


@pytest.mark.usefixtures("x64")
def test_sparsemax_jacobian_and_loss_hessian_are_the_closed_form():
    z, y = _scores((4, 7), seed=13)
    # One compiled program for the four rows (eagerly, every operation of each derivative
    # compiles on its own); the label is an argument.
    derivatives = jax.jit(lambda row, label: (
        jax.jacfwd(lossjax.sparsemax)(row), jax.jacrev(lossjax.sparsemax)(row),
        jax.hessian(lambda s: lossjax.sparsemax_loss(s[None], label[None],
                                                     reduction="sum"))(row)))
    for row, label in zip(z, y, strict=True):
        support = (ref.sparsemax(row) > 0).astype(np.float64)
        expected = np.diag(support) - np.outer(support, support) / support.sum()
        jacfwd, jacrev, hessian = derivatives(row, label)
        np.testing.assert_allclose(jacfwd, expected, atol=1e-12)
        np.testing.assert_allclose(jacrev, expected, atol=1e-12)
        np.testing.assert_allclose(hessian, expected, atol=1e-12)
