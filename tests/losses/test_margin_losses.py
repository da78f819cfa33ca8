"""Margin-based and other classification losses from PyTorch, optax and Keras:
soft_margin, perceptron, multiclass_perceptron, multi_margin, multilabel_margin,
multilabel_soft_margin, softmax_focal_loss; and the regression msle / mape."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax
from tests import _reference as ref


def _data(shape=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=shape)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    signs = rng.choice([-1.0, 1.0], size=shape)
    multi_hot = (rng.random(shape) > 0.5).astype(np.float64)
    return s, y, signs, multi_hot


@pytest.mark.usefixtures("x64")
def test_soft_margin_and_perceptron_match_numpy_and_optax():
    s, _, signs, _ = _data()
    for fn, r in ((lossjax.soft_margin, ref.soft_margin), (lossjax.perceptron, ref.perceptron)):
        np.testing.assert_allclose(fn(s, signs, reduction="none"), r(s, signs), rtol=1e-12)
        np.testing.assert_allclose(fn(s, (signs > 0).astype(float), reduction="none"),
                                   r(s, signs), rtol=1e-12)
        check_grads(lambda x, f=fn: f(x, signs), (s,), order=1, modes=["rev"])
    np.testing.assert_allclose(lossjax.perceptron(s, signs, reduction="none"),
                               optax.losses.perceptron_loss(s, signs), rtol=1e-12)
    np.testing.assert_allclose(lossjax.soft_margin(s, (signs > 0).astype(float)),
                               lossjax.sigmoid_binary_cross_entropy(s, (signs > 0).astype(float)),
                               rtol=1e-12)
    big = jnp.array([1e4, -1e4], jnp.float32)
    value, grad = jax.value_and_grad(lossjax.soft_margin)(big, jnp.array([-1.0, 1.0], jnp.float32))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.usefixtures("x64")
def test_multiclass_perceptron_matches_numpy_and_optax():
    s, y, _, _ = _data(seed=1)
    expected = s.max(-1) - s[np.arange(len(y)), y]
    got = lossjax.multiclass_perceptron(s, y, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(got, optax.losses.multiclass_perceptron_loss(s, y), rtol=1e-12)
    assert np.isnan(lossjax.multiclass_perceptron(s[:1], np.array([7]), reduction="none")[0])


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.usefixtures("x64")
def test_multi_margin_matches_pytorch_formula(p, margin):
    s, y, _, _ = _data(seed=2)
    w = np.linspace(0.5, 1.5, 5)
    for cw in (None, w):
        expected = ref.multi_margin(s, y, p=p, margin=margin, class_weights=cw)
        got = lossjax.multi_margin(s, y, p=p, margin=margin, class_weights=cw, reduction="none")
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    check_grads(lambda x: lossjax.multi_margin(x, y, p=p, margin=margin), (s,), order=1,
                modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_multilabel_losses_match_pytorch_formulas():
    s, _, _, multi_hot = _data(seed=3)
    multi_hot[0] = 0.0  # no positive class: loss 0
    np.testing.assert_allclose(lossjax.multilabel_margin(s, multi_hot, reduction="none"),
                               ref.multilabel_margin(s, multi_hot), rtol=1e-12)
    assert lossjax.multilabel_margin(s, multi_hot, reduction="none")[0] == 0.0
    w = np.linspace(0.5, 1.5, 5)
    for cw in (None, w):
        np.testing.assert_allclose(
            lossjax.multilabel_soft_margin(s, multi_hot, class_weights=cw, reduction="none"),
            ref.multilabel_soft_margin(s, multi_hot, cw), rtol=1e-12)
    check_grads(lambda x: lossjax.multilabel_margin(x, multi_hot), (s,), order=1, modes=["rev"])
    check_grads(lambda x: lossjax.multilabel_soft_margin(x, multi_hot), (s,), order=2,
                modes=["rev"])
    np.testing.assert_allclose(
        lossjax.multilabel_soft_margin(s.T, multi_hot.T, axis=0, reduction="none"),
        ref.multilabel_soft_margin(s, multi_hot), rtol=1e-12)


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.usefixtures("x64")
def test_softmax_focal_matches_numpy(alpha, gamma):
    s, y, _, _ = _data(seed=4)
    soft = np.random.default_rng(5).dirichlet(np.ones(5), size=6)
    for t in (np.eye(5)[y], soft):
        np.testing.assert_allclose(
            lossjax.softmax_focal_loss(s, t, alpha=alpha, gamma=gamma, reduction="none"),
            ref.softmax_focal(s, t, alpha, gamma), rtol=1e-12)
    check_grads(lambda x: lossjax.softmax_focal_loss(x, soft, gamma=gamma), (s,), order=2,
                modes=["rev"])
    if gamma == 0 and alpha is None:
        np.testing.assert_allclose(lossjax.softmax_focal_loss(s, soft, gamma=0.0),
                                   optax.softmax_cross_entropy(s, soft).mean(), rtol=1e-12)
    big = jnp.array([[1e4, -1e4, -jnp.inf]], jnp.float32)
    lab = jnp.array([[0.0, 1.0, 0.0]], jnp.float32)
    value, grad = jax.value_and_grad(lossjax.softmax_focal_loss)(big, lab)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", ["msle", "mape"])
@pytest.mark.usefixtures("x64")
def test_msle_and_mape_match_keras_formulas(name):
    rng = np.random.default_rng(6)
    p, t = rng.uniform(0.1, 5.0, size=(4, 3)), rng.uniform(0.1, 5.0, size=(4, 3))
    fn, r = getattr(lossjax, name), getattr(ref, name)
    np.testing.assert_allclose(fn(p, t, reduction="none"), r(p, t), rtol=1e-12)
    np.testing.assert_allclose(fn(p, t), r(p, t).mean(), rtol=1e-12)
    check_grads(lambda a: fn(a, t), (p,), order=1, modes=["rev"])
    # Degenerate points: negative prediction (msle clamps), zero target (mape's eps).
    edge_p, edge_t = jnp.array([-1.0, 0.0, 2.0]), jnp.array([0.0, 0.0, 1.0])
    value, grad = jax.value_and_grad(fn)(edge_p, edge_t)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(fn(edge_p, edge_t, reduction="none"), r(edge_p, edge_t),
                               rtol=1e-12)


NEW = {
    "soft_margin": lambda s, y, sg, mh: (s, sg),
    "perceptron": lambda s, y, sg, mh: (s, sg),
    "multiclass_perceptron": lambda s, y, sg, mh: (s, y),
    "multi_margin": lambda s, y, sg, mh: (s, y),
    "multilabel_margin": lambda s, y, sg, mh: (s, mh),
    "multilabel_soft_margin": lambda s, y, sg, mh: (s, mh),
    "softmax_focal_loss": lambda s, y, sg, mh: (s, np.eye(5)[y]),
    "msle": lambda s, y, sg, mh: (np.abs(s), mh),
    "mape": lambda s, y, sg, mh: (s, sg),
}


@pytest.mark.parametrize("name", sorted(NEW))
@pytest.mark.usefixtures("x64")
def test_contract_weights_where_jit_half(name):
    fn = getattr(lossjax, name)
    a, b = NEW[name](*_data(seed=7))
    per = np.asarray(fn(a, b, reduction="none"))
    mask = np.ones(per.shape, bool)
    mask.flat[::2] = False
    w = np.linspace(0.5, 2.0, per.size).reshape(per.shape)
    np.testing.assert_allclose(fn(a, b, where=mask), per[mask].mean(), rtol=1e-12)
    np.testing.assert_allclose(fn(a, b, weights=w, reduction="sum"), (w * per).sum(), rtol=1e-12)
    grad = jax.grad(lambda x: fn(x, b, where=mask))(a)
    grad = np.asarray(grad) if grad.shape == mask.shape else np.asarray(grad)[~mask]
    if grad.shape == mask.shape:
        assert np.all(grad[~mask] == 0.0)
    else:
        assert np.all(grad == 0.0)
    np.testing.assert_allclose(jax.jit(fn)(a, b), per.mean(), rtol=1e-12)
    half_b = b if np.issubdtype(np.asarray(b).dtype, np.integer) else jnp.asarray(b, jnp.bfloat16)
    assert fn(jnp.asarray(a, jnp.bfloat16), half_b).dtype == jnp.float32
    with pytest.raises(ValueError, match="reduction"):
        fn(a, b, reduction="batchmean")


def test_margin_losses_bad_input_raises():
    s, y, signs, multi_hot = _data()
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        lossjax.multi_margin(s, y, p=3)
    with pytest.raises(ValueError, match="margin"):
        lossjax.multi_margin(s, y, margin=-1.0)
    with pytest.raises(ValueError, match="class_weights"):
        lossjax.multi_margin(s, y, class_weights=np.ones(3))
    with pytest.raises(ValueError, match="class_weights"):
        lossjax.multilabel_soft_margin(s, multi_hot, class_weights=np.ones(3))
    with pytest.raises(ValueError, match="integer"):
        lossjax.multiclass_perceptron(s, signs)
    with pytest.raises(ValueError, match=r"\(6, 5\).*\(6, 1\)"):
        lossjax.multilabel_margin(s, multi_hot[:, :1])
    with pytest.raises(ValueError, match="gamma"):
        lossjax.softmax_focal_loss(s, np.eye(5)[y], gamma=-1.0)
    with pytest.raises(ValueError, match="eps"):
        lossjax.mape(s, s, eps=0.0)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 1.0, 2.0])
@pytest.mark.usefixtures("x64")
def test_focal_losses_with_any_gamma_are_finite_at_certain_predictions(gamma):
    # (1 - p)^gamma has an infinite slope at p = 1 for gamma < 1; the loss's true gradient
    # there is 0 (the log term vanishes faster), and float32 reaches p = 1 exactly.
    x = jnp.array([[1e4, 0.0, -1e4], [30.0, -30.0, 0.0]], jnp.float32)
    soft_labels = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], jnp.float32)
    for fn in (lossjax.softmax_focal_loss, lossjax.sigmoid_focal_loss):
        value, grad = jax.value_and_grad(lambda z, f=fn: f(z, soft_labels, gamma=gamma))(x)
        assert np.isfinite(value) and np.all(np.isfinite(grad)), fn.__name__
    np.testing.assert_allclose(
        lossjax.softmax_focal_loss(np.asarray(x[1:], np.float64), np.asarray(soft_labels[1:]),
                                   gamma=gamma, reduction="none"),
        ref.softmax_focal(x[1:], soft_labels[1:], None, gamma), rtol=1e-10)
