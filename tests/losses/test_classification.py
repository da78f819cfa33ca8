import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax
from tests import _reference as ref

CE_INT = lossjax.softmax_cross_entropy_with_integer_labels


def _logits_labels(shape=(6, 5), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = (3 * rng.normal(size=shape)).astype(dtype)
    y = rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
    return x, y


# One compiled program per case instead of every operation compiling on its own. The
# hyperparameters are static, so they stay concrete Python floats inside (as in an eager
# call: a 0 smoothing or z-loss term is skipped, not traced).
@functools.partial(jax.jit, static_argnames=("smoothing", "z_loss"))
def _integer_ce_bundle(x, y, smoothing, z_loss):
    one_hot = jax.nn.one_hot(y, x.shape[-1])
    return (CE_INT(x, y, label_smoothing=smoothing, z_loss=z_loss, reduction="none"),
            CE_INT(x, y, label_smoothing=smoothing, z_loss=z_loss),
            optax.softmax_cross_entropy(x, optax.smooth_labels(one_hot, smoothing)),
            lossjax.softmax_cross_entropy(x, one_hot, label_smoothing=smoothing,
                                          reduction="none"))


@pytest.mark.parametrize("shape", [(5,), (6, 5), (2, 3, 7)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("z_loss", [0.0, 1e-2])
def test_integer_ce_matches_numpy_and_optax(shape, smoothing, z_loss):
    x, y = _logits_labels(shape)
    expected = ref.ce_integer(x, y, label_smoothing=smoothing, z_loss=z_loss)
    got, mean, optax_ce, soft_ce = _integer_ce_bundle(x, y, smoothing, z_loss)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean, expected.mean(), rtol=1e-5)
    if z_loss == 0:
        np.testing.assert_allclose(got, optax_ce, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(soft_ce, expected, rtol=1e-5, atol=1e-6)


def test_integer_ce_matches_optax_without_options():
    x, y = _logits_labels((8, 11), seed=1)
    np.testing.assert_allclose(*jax.jit(lambda x, y: (  # one compiled program
        CE_INT(x, y, reduction="none"),
        optax.softmax_cross_entropy_with_integer_labels(x, y)))(x, y), rtol=1e-6)


def test_class_weights_and_ignore_index_follow_pytorch():
    x, y = _logits_labels((10, 4), seed=2)
    y[[1, 4]] = -100
    w = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
    kept = y != -100
    per = ref.ce_integer(x[kept], y[kept], class_weights=w, label_smoothing=0.2)
    # PyTorch: mean divides by the sum of the kept targets' weights
    expected = per.sum() / w[y[kept]].sum()
    got, none, unweighted = jax.jit(lambda x, y: (  # one compiled program
        CE_INT(x, y, ignore_index=-100, class_weights=w, label_smoothing=0.2),
        CE_INT(x, y, ignore_index=-100, class_weights=w, label_smoothing=0.2, reduction="none"),
        CE_INT(x, y, ignore_index=-100)))(x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(none)[kept], per, rtol=1e-5)
    assert np.all(np.asarray(none)[~kept] == 0.0)
    # without class weights, mean is over the non-ignored tokens
    np.testing.assert_allclose(unweighted, ref.ce_integer(x[kept], y[kept]).mean(), rtol=1e-5)


def test_axis_equals_moveaxis():
    x, y = _logits_labels((4, 6, 3), seed=3)
    x_first = np.moveaxis(x, -1, 1)
    np.testing.assert_allclose(*jax.jit(lambda x_first, x, y: (  # one compiled program
        CE_INT(x_first, y, axis=1, reduction="none"),
        CE_INT(x, y, reduction="none")))(x_first, x, y), rtol=1e-6)


@pytest.mark.usefixtures("x64")
def test_integer_ce_gradient_matches_finite_differences():
    x, y = _logits_labels((4, 5), seed=4, dtype=np.float64)
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.5])
    # jitted: eagerly every operation of each derivative compiles on its own
    check_grads(jax.jit(lambda a: CE_INT(a, y, label_smoothing=0.1, z_loss=1e-3,
                                         class_weights=w)), (x,), order=2, modes=["rev"])
    # independent formula: d/dx mean CE = (softmax - onehot) / n
    g = jax.jit(jax.grad(lambda a: CE_INT(a, y)))(x)
    expected = (np.exp(ref.log_softmax(x)) - np.eye(5)[y]) / 4
    np.testing.assert_allclose(g, expected, rtol=1e-10)


def test_extreme_and_minus_inf_logits_are_finite():
    big = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]], jnp.float32)
    x = jnp.array([[0.0, -jnp.inf, 1.0]], jnp.float32)

    @jax.jit  # every value and gradient in one compiled program, not op by op
    def values_and_grads(big, x):
        return (jax.value_and_grad(lambda a: CE_INT(a, jnp.array([1, 0])))(big),
                jax.value_and_grad(lambda a: CE_INT(a, jnp.array([2])))(x),
                jax.value_and_grad(lambda a: lossjax.softmax_cross_entropy(
                    a, jnp.array([[0.3, 0.0, 0.7]])))(x))

    (v, g), *minus_inf = values_and_grads(big, x)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    np.testing.assert_allclose(v, 2e4, rtol=1e-6)
    for v, g in minus_inf:
        assert np.isfinite(v) and np.all(np.isfinite(g)), (v, g)


def test_out_of_range_label_gives_nan_for_that_example_only():
    x, _ = _logits_labels((3, 4))
    out = jax.jit(functools.partial(CE_INT, reduction="none"))(x, jnp.array([0, 4, -1]))
    assert np.isfinite(out[0]) and np.isnan(out[1]) and np.isnan(out[2])
    assert np.isnan(jax.jit(CE_INT)(x, jnp.array([0, 9, 1])))


def test_masked_and_ignored_examples_get_exactly_zero_gradient():
    x, y = _logits_labels((6, 5), seed=5)
    y[2] = -1
    where = np.array([True, True, True, False, True, True])

    @jax.jit  # the gradients and the value in one compiled program, not op by op
    def grads_and_value(x, y):
        return (jax.grad(lambda a: CE_INT(a, y, ignore_index=-1, where=where))(x),
                jax.grad(lambda a: lossjax.softmax_cross_entropy(
                    a, jax.nn.one_hot(y, 5), where=where))(x),
                CE_INT(x, y, where=np.zeros(6, bool)))

    g, g_soft, all_masked = map(np.asarray, grads_and_value(x, y))
    assert np.all(g[2] == 0) and np.all(g[3] == 0) and np.all(g[[0, 1, 4, 5]] != 0)
    assert np.all(g_soft[3] == 0)
    assert float(all_masked) == 0.0


def test_class_indices_to_softmax_cross_entropy_point_to_the_integer_label_loss():
    x, y = _logits_labels((4, 3))
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 3\).*"
                       "softmax_cross_entropy_with_integer_labels"):
        lossjax.softmax_cross_entropy(x, y)
    one_hot = np.eye(3, dtype=np.int32)[y]  # integer one-hot labels are a distribution
    np.testing.assert_allclose(lossjax.softmax_cross_entropy(x, one_hot), CE_INT(x, y),
                               rtol=1e-6)


def test_classification_bad_input_raises():
    x, y = _logits_labels((4, 3))
    with pytest.raises(ValueError, match="integer"):
        CE_INT(x, y.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(4, 1\)"):
        CE_INT(x, y[:, None])
    with pytest.raises(ValueError, match="label_smoothing"):
        CE_INT(x, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        lossjax.softmax_cross_entropy(x, x, label_smoothing=-0.1)
    with pytest.raises(ValueError, match="z_loss"):
        CE_INT(x, y, z_loss=-1.0)
    with pytest.raises(ValueError, match="class_weights"):
        CE_INT(x, y, class_weights=np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        CE_INT(x, y, reduction="avg")
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\)"):
        lossjax.sigmoid_binary_cross_entropy(jnp.zeros(4), jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match="integer"):
        lossjax.multiclass_hinge(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="gamma"):
        lossjax.sigmoid_focal_loss(x, x, gamma=-1.0)


BINARY = {
    "sigmoid_bce": (lossjax.sigmoid_binary_cross_entropy, ref.sigmoid_bce, {}),
    "focal": (lossjax.sigmoid_focal_loss, ref.focal, {"gamma": 2.0}),
    "focal_alpha": (lossjax.sigmoid_focal_loss, ref.focal, {"gamma": 1.5, "alpha": 0.25}),
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.usefixtures("x64")
def test_binary_losses_match_numpy_and_gradients(name):
    loss, reference, opts = BINARY[name]
    rng = np.random.default_rng(7)
    x = (2 * rng.normal(size=(5, 4))).astype(np.float64)
    y = rng.uniform(size=(5, 4)) > 0.5
    y = y.astype(np.float64)
    got = jax.jit(lambda x: loss(x, y, reduction="none", **opts))(x)  # not op by op
    np.testing.assert_allclose(got, reference(x, y, **opts), rtol=1e-10)
    check_grads(jax.jit(lambda a: loss(a, y, **opts)), (x,), order=2, modes=["rev"])


def test_binary_losses_match_optax():
    rng = np.random.default_rng(8)
    x = (2 * rng.normal(size=(5, 4))).astype(np.float32)
    y = (rng.uniform(size=(5, 4)) > 0.5).astype(np.float32)
    bce, optax_bce, focal, optax_focal, focal0, bce_mean = jax.jit(lambda x, y: (  # one program
        lossjax.sigmoid_binary_cross_entropy(x, y, reduction="none"),
        optax.sigmoid_binary_cross_entropy(x, y),
        lossjax.sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, reduction="none"),
        optax.sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0),
        lossjax.sigmoid_focal_loss(x, y, gamma=0.0),
        lossjax.sigmoid_binary_cross_entropy(x, y)))(x, y)
    np.testing.assert_allclose(bce, optax_bce, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(focal, optax_focal, rtol=1e-5, atol=1e-6)
    # focal with gamma 0 and no alpha is BCE
    np.testing.assert_allclose(focal0, bce_mean, rtol=1e-6)


def test_sigmoid_bce_at_infinite_logits_is_exact_not_nan():
    # softplus(x) − x·y is inf − inf = NaN at a logit of +inf with label 1 (and 0·inf at −inf
    # with label 0), where the loss is exactly 0 and its gradient σ(x) − y is 0.
    inf = np.inf
    x = jnp.array([-inf, inf, -inf, inf, 0.5], jnp.float32)
    y = jnp.array([0.0, 1.0, 1.0, 0.0, 0.25], jnp.float32)
    loss = lossjax.sigmoid_binary_cross_entropy(x, y, reduction="none")
    grad = jax.grad(lambda a: lossjax.sigmoid_binary_cross_entropy(a, y, reduction="sum"))(x)
    np.testing.assert_array_equal(np.asarray(loss[:4]), [0.0, 0.0, inf, inf])
    np.testing.assert_allclose(loss[4], ref.sigmoid_bce(0.5, 0.25), rtol=1e-6)
    np.testing.assert_allclose(grad, [0.0, 0.0, -1.0, 1.0, ref.sigmoid(0.5) - 0.25], rtol=1e-6)
    # the label derivative of a finite term is softplus(−x) − softplus(x) = −x
    _, tangent = jax.jvp(lambda t: lossjax.sigmoid_binary_cross_entropy(
        x[4:], t, reduction="none"), (y[4:],), (jnp.ones(1),))
    np.testing.assert_allclose(tangent, [-0.5], rtol=1e-6)


@pytest.mark.usefixtures("x64")
def test_binary_cross_entropy_from_probabilities():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.01, 0.99, size=(6,))
    y = (rng.uniform(size=6) > 0.5).astype(np.float64)
    edge = jnp.array([0.0, 1.0, 0.0, 1.0], jnp.float32)
    lab = jnp.array([1.0, 0.0, 0.0, 1.0], jnp.float32)
    x = np.array([-2.0, 0.3, 1.7])

    @jax.jit  # every value and the gradient in one compiled program, not op by op
    def values(p, edge, sigmoid_x, x):
        return (lossjax.binary_cross_entropy(p, y, reduction="none"),
                jax.value_and_grad(lambda a: lossjax.binary_cross_entropy(a, lab))(edge),
                lossjax.binary_cross_entropy(sigmoid_x, np.array([1.0, 0, 1])),
                lossjax.sigmoid_binary_cross_entropy(x, np.array([1.0, 0, 1])))

    got, (v, g), from_probabilities, from_logits = values(p, edge, ref.sigmoid(x), x)
    np.testing.assert_allclose(got, ref.bce(p, y), rtol=1e-10)
    check_grads(jax.jit(lambda a: lossjax.binary_cross_entropy(a, y)), (p,), order=1,
                modes=["rev"])
    # probabilities of exactly 0 and 1 stay finite
    assert np.isfinite(v) and np.all(np.isfinite(g))
    # logits give the same value as sigmoid probabilities
    np.testing.assert_allclose(from_probabilities, from_logits, rtol=1e-6)


def test_extreme_logits_binary_losses_are_finite():
    x = jnp.array([1e4, -1e4, 1e4, -1e4], jnp.float32)
    y = jnp.array([0.0, 1.0, 1.0, 0.0], jnp.float32)
    for v, g in jax.jit(lambda x: [  # one compiled program, not op by op
            jax.value_and_grad(lambda a, loss=loss: loss(a, y))(x)
            for loss in (lossjax.sigmoid_binary_cross_entropy, lossjax.sigmoid_focal_loss)])(x):
        assert np.isfinite(v) and np.all(np.isfinite(g))


@pytest.mark.parametrize("labels", [[1.0, -1.0, 1.0, -1.0], [1.0, 0.0, 1.0, 0.0]])
def test_hinge_losses_accept_both_label_conventions(labels):
    s = np.array([0.3, 0.4, 2.0, -3.0])
    y = np.array(labels)
    np.testing.assert_allclose(lossjax.hinge(s, y, reduction="none"), ref.hinge(s, y))
    np.testing.assert_allclose(lossjax.squared_hinge(s, y, reduction="none"), ref.hinge(s, y) ** 2)
    signed = np.where(y == 0, -1.0, y)
    np.testing.assert_allclose(lossjax.hinge(s, y, reduction="none"), optax.hinge_loss(s, signed))


@pytest.mark.usefixtures("x64")
def test_hinge_gradients_and_kink():
    s = np.array([0.3, 0.4, 2.0, -3.0, 0.1])
    y = np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    # jitted: eagerly every operation of each derivative compiles on its own
    check_grads(jax.jit(lambda a: lossjax.hinge(a, y)), (s,), order=1, modes=["rev"])
    check_grads(jax.jit(lambda a: lossjax.squared_hinge(a, y)), (s,), order=1, modes=["rev"])
    # at the margin y*s == 1 the chosen subgradient is 0
    g = jax.jit(jax.grad(lambda a: lossjax.hinge(a, jnp.array([1.0, -1.0]), reduction="sum")))(
        jnp.array([1.0, -1.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0])


@pytest.mark.usefixtures("x64")
def test_multiclass_hinge_matches_numpy_and_optax():
    rng = np.random.default_rng(10)
    s = rng.normal(size=(7, 5))
    y = rng.integers(0, 5, size=7)
    got, optax_got, bad_label = jax.jit(lambda s, y: (  # one compiled program, not op by op
        lossjax.multiclass_hinge(s, y, reduction="none"),
        optax.losses.multiclass_hinge_loss(s, y),
        lossjax.multiclass_hinge(s[:2], jnp.array([0, 5]), reduction="none")))(s, y)
    np.testing.assert_allclose(got, ref.multiclass_hinge(s, y), rtol=1e-12)
    np.testing.assert_allclose(got, optax_got, rtol=1e-6)
    check_grads(jax.jit(lambda a: lossjax.multiclass_hinge(a, y)), (s,), order=1, modes=["rev"])
    assert np.isnan(bad_label[1])


_ONE_HOT = np.eye(4, dtype=np.float32)[[0, 2]]
MINUS_INF_CASES = {
    "softmax_cross_entropy_with_integer_labels": lambda x: CE_INT(x, np.array([0, 2])),
    "generalized_cross_entropy":
        lambda x: lossjax.generalized_cross_entropy(x, np.array([0, 2])),
    "multiclass_hinge": lambda x: lossjax.multiclass_hinge(x, np.array([0, 2])),
    "multiclass_perceptron": lambda x: lossjax.multiclass_perceptron(x, np.array([0, 2])),
    "multi_margin": lambda x: lossjax.multi_margin(x, np.array([0, 2])),
    "sparsemax_loss": lambda x: lossjax.sparsemax_loss(x, np.array([0, 2])),
    "perplexity": lambda x: lossjax.perplexity(x, np.array([0, 2])),
    "softmax_cross_entropy": lambda x: lossjax.softmax_cross_entropy(x, _ONE_HOT),
    "poly1_cross_entropy": lambda x: lossjax.poly1_cross_entropy(x, _ONE_HOT),
    "softmax_focal_loss": lambda x: lossjax.softmax_focal_loss(x, _ONE_HOT),
    "categorical_hinge": lambda x: lossjax.categorical_hinge(x, _ONE_HOT),
}


@pytest.mark.parametrize("name", MINUS_INF_CASES)
def test_minus_inf_logit_on_a_non_label_class_is_a_masked_class(name):
    """A −inf logit on a class that is not the label (how classes are masked) gives the
    value and gradient of a very negative finite logit, not NaN (0 · −inf)."""
    loss = MINUS_INF_CASES[name]
    finite = np.array([[1.0, 0.5, -1e4, 0.2], [0.3, -1e4, 2.0, -0.5]], np.float32)
    masked = np.where(finite == -1e4, -np.inf, finite).astype(np.float32)
    value_and_grad = jax.jit(jax.value_and_grad(loss))  # one compilation for both inputs
    value, grad = value_and_grad(masked)
    expected_value, expected_grad = value_and_grad(finite)
    assert np.isfinite(value) and np.all(np.isfinite(grad)), (value, grad)
    np.testing.assert_allclose(value, expected_value, rtol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)
