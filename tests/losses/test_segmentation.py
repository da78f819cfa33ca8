import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax

# ---------------------------------------------------------------- NumPy float64 references


def _np_tversky_per_class(p, t, alpha, beta, smooth, axes):
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    tp = np.sum(p * t, axis=axes)
    fp = np.sum(p * (1 - t), axis=axes)
    fn = np.sum((1 - p) * t, axis=axes)
    num, den = tp + smooth, tp + alpha * fp + beta * fn + smooth
    ti = np.where(den == 0, 1.0, num / np.where(den == 0, 1.0, den))
    return 1 - ti


def _np_dice_per_class(p, t, smooth, axes):
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    num = 2 * np.sum(p * t, axis=axes) + smooth
    den = np.sum(p, axis=axes) + np.sum(t, axis=axes) + smooth
    return 1 - np.where(den == 0, 1.0, num / np.where(den == 0, 1.0, den))


def _np_class_mean(per_class, class_weights=None):
    if class_weights is not None:
        per_class = per_class * np.asarray(class_weights, np.float64)
    return per_class.mean(axis=-1)


def _np_softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_probs(x):
    x = np.asarray(x, np.float64)
    return 1 / (1 + np.exp(-x)) if x.shape[-1] == 1 else _np_softmax(x)


def _default_axes(ndim):
    return tuple(range(1, ndim - 1))


def _segmentation_batch(shape, seed=0, dtype=np.float64):
    """Logits, their probabilities (summing to 1 over classes for C > 1) and one-hot targets."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape) * 2
    c = shape[-1]
    if c == 1:
        targets = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    else:
        targets = np.eye(c)[rng.integers(0, c, size=shape[:-1])]
    return logits.astype(dtype), _np_probs(logits).astype(dtype), targets.astype(dtype)


SHAPES = [(2, 3, 4, 3), (3, 5, 1), (2, 4, 2)]
TVERSKY_PARAMS = [(0.5, 0.5, 1.0), (0.3, 0.7, 1.0), (0.7, 0.2, 0.0), (1.0, 1.0, 0.5)]


# ---------------------------------------------------------------- values against NumPy


def test_textbook_example():
    # TP = 1, FP = 1, FN = 1, one class, no smoothing.
    p = jnp.array([[1.0, 1.0, 0.0, 0.0]])[..., None]
    t = jnp.array([[1.0, 0.0, 1.0, 0.0]])[..., None]
    np.testing.assert_allclose(lossjax.dice(p, t, smooth=0.0), 1 - 2 / 4)
    np.testing.assert_allclose(lossjax.tversky(p, t, alpha=1.0, beta=1.0, smooth=0.0), 1 - 1 / 3)
    np.testing.assert_allclose(lossjax.tversky(p, t, alpha=0.3, beta=0.7, smooth=0.0), 0.5)
    np.testing.assert_allclose(lossjax.tversky(p, t, alpha=0.0, beta=2.0, smooth=0.0), 1 - 1 / 3)


@jax.jit
def _tversky_four_ways(probs, targets, logits, alpha, beta, smooth):
    """reduction none, sum, mean, and none from logits: one compilation per shape, shared
    by the (alpha, beta, smooth) cases (arguments here)."""
    opts = dict(alpha=alpha, beta=beta, smooth=smooth)
    return (lossjax.tversky(probs, targets, reduction="none", **opts),
            lossjax.tversky(probs, targets, reduction="sum", **opts),
            lossjax.tversky(probs, targets, **opts),
            lossjax.tversky(logits, targets, from_logits=True, reduction="none", **opts))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha, beta, smooth", TVERSKY_PARAMS)
@pytest.mark.usefixtures("x64")
def test_tversky_matches_numpy_all_reductions(shape, alpha, beta, smooth):
    logits, probs, targets = _segmentation_batch(shape, seed=1)
    expected = _np_class_mean(
        _np_tversky_per_class(probs, targets, alpha, beta, smooth, _default_axes(len(shape))))
    none, total, mean, from_logits = _tversky_four_ways(probs, targets, logits, alpha, beta,
                                                        smooth)
    assert none.shape == (shape[0],)
    np.testing.assert_allclose(none, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(total, expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(mean, expected.mean(), rtol=1e-12)
    # from_logits applies sigmoid (C == 1) or softmax (C > 1) first.
    np.testing.assert_allclose(from_logits, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("smooth", [0.0, 1.0, 2.5])
@pytest.mark.usefixtures("x64")
def test_dice_matches_numpy_all_reductions(shape, smooth):
    logits, probs, targets = _segmentation_batch(shape, seed=2)
    expected = _np_class_mean(_np_dice_per_class(probs, targets, smooth,
                                                 _default_axes(len(shape))))
    np.testing.assert_allclose(lossjax.dice(probs, targets, smooth=smooth, reduction="none"),
                               expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lossjax.dice(probs, targets, smooth=smooth, reduction="sum"),
                               expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(lossjax.dice(probs, targets, smooth=smooth), expected.mean(),
                               rtol=1e-12)
    np.testing.assert_allclose(
        lossjax.dice(logits, targets, smooth=smooth, from_logits=True, reduction="none"),
        expected, rtol=1e-12, atol=1e-14)


@pytest.mark.usefixtures("x64")
def test_soft_targets_and_unnormalised_probabilities_are_accepted():
    rng = np.random.default_rng(3)
    p, t = rng.uniform(size=(3, 4, 2)), rng.uniform(size=(3, 4, 2))  # rows do not sum to 1
    np.testing.assert_allclose(
        lossjax.tversky(p, t, alpha=0.4, beta=0.9, reduction="none"),
        _np_class_mean(_np_tversky_per_class(p, t, 0.4, 0.9, 1.0, (1,))), rtol=1e-12)
    np.testing.assert_allclose(lossjax.dice(p, t, reduction="none"),
                               _np_class_mean(_np_dice_per_class(p, t, 1.0, (1,))), rtol=1e-12)


@pytest.mark.parametrize("smooth", [0.0, 0.5, 1.0])
@pytest.mark.usefixtures("x64")
def test_dice_is_tversky_with_half_weights_and_half_smooth(smooth):
    _, probs, targets = _segmentation_batch((2, 3, 3, 4), seed=4)
    np.testing.assert_allclose(
        lossjax.dice(probs, targets, smooth=smooth, reduction="none"),
        lossjax.tversky(probs, targets, alpha=0.5, beta=0.5, smooth=smooth / 2,
                        reduction="none"), rtol=1e-12)
    if smooth == 0.0:
        np.testing.assert_allclose(lossjax.dice(probs, targets, smooth=0.0, reduction="none"),
                                   lossjax.tversky(probs, targets, smooth=0.0, reduction="none"),
                                   rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_class_weights_multiply_then_average_over_classes():
    _, probs, targets = _segmentation_batch((3, 4, 3), seed=5)
    w = np.array([0.2, 1.5, 3.0])
    per_class = _np_tversky_per_class(probs, targets, 0.3, 0.6, 1.0, (1,))
    np.testing.assert_allclose(
        lossjax.tversky(probs, targets, alpha=0.3, beta=0.6, class_weights=w, reduction="none"),
        (per_class * w).sum(-1) / 3, rtol=1e-12)
    np.testing.assert_allclose(
        lossjax.dice(probs, targets, class_weights=np.ones(3), reduction="none"),
        lossjax.dice(probs, targets, reduction="none"), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_explicit_axis():
    _, probs, targets = _segmentation_batch((2, 3, 4, 2), seed=6)
    # Sum over axis 2 only: one loss per (batch, row).
    out = lossjax.tversky(probs, targets, alpha=0.2, beta=0.8, axis=2, reduction="none")
    assert out.shape == (2, 3)
    np.testing.assert_allclose(
        out, _np_class_mean(_np_tversky_per_class(probs, targets, 0.2, 0.8, 1.0, (2,))),
        rtol=1e-12)
    np.testing.assert_allclose(
        lossjax.dice(probs, targets, axis=(-2, 1), reduction="none"),
        lossjax.dice(probs, targets, reduction="none"), rtol=1e-12)
    # Pooling the batch axis too gives one "batch dice" score.
    pooled = lossjax.dice(probs, targets, axis=(0, 1, 2), reduction="none")
    assert pooled.shape == ()
    np.testing.assert_allclose(
        pooled, _np_class_mean(_np_dice_per_class(probs, targets, 1.0, (0, 1, 2))), rtol=1e-12)


# ---------------------------------------------------------------- optax parity


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha, beta, smooth", TVERSKY_PARAMS)
@pytest.mark.usefixtures("x64")
def test_tversky_matches_optax_dice_loss(shape, alpha, beta, smooth):
    # optax.losses.dice_loss(alpha, beta, smooth) is our tversky with the same numbers; its
    # reduction="none" output is per class, "mean" averages classes (our per example loss).
    logits, probs, targets = _segmentation_batch(shape, seed=7)
    opts = dict(alpha=alpha, beta=beta, smooth=smooth)
    if shape[-1] > 1:  # optax requires probabilities that sum to 1 over classes
        np.testing.assert_allclose(
            lossjax.tversky(probs, targets, reduction="none", **opts),
            optax.losses.dice_loss(jnp.asarray(probs), jnp.asarray(targets),
                                   apply_softmax=False, **opts),
            rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        lossjax.tversky(logits, targets, from_logits=True, reduction="none", **opts),
        optax.losses.dice_loss(jnp.asarray(logits), jnp.asarray(targets), apply_softmax=True,
                               **opts),
        rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_tversky_matches_optax_with_class_weights_and_axis():
    logits, probs, targets = _segmentation_batch((2, 3, 4, 3), seed=8)
    w = jnp.array([0.5, 2.0, 1.0])
    np.testing.assert_allclose(
        lossjax.tversky(probs, targets, alpha=0.3, beta=0.7, class_weights=w,
                        reduction="none"),
        optax.losses.dice_loss(jnp.asarray(probs), jnp.asarray(targets), class_weights=w,
                               alpha=0.3, beta=0.7, apply_softmax=False),
        rtol=1e-10)
    np.testing.assert_allclose(
        lossjax.tversky(logits, targets, axis=(2,), from_logits=True, reduction="none"),
        optax.losses.dice_loss(jnp.asarray(logits), jnp.asarray(targets), axis=(2,)),
        rtol=1e-10)


@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.usefixtures("x64")
def test_dice_matches_optax_with_half_smooth(smooth):
    # optax's smooth s enters as (TP + s) / (½(ΣP + ΣT) + s) = (2TP + 2s) / (ΣP + ΣT + 2s):
    # our textbook dice with smooth = 2s.
    logits, probs, targets = _segmentation_batch((2, 3, 3, 4), seed=9)
    np.testing.assert_allclose(
        lossjax.dice(probs, targets, smooth=2 * smooth, reduction="none"),
        optax.losses.dice_loss(jnp.asarray(probs), jnp.asarray(targets), smooth=smooth,
                               apply_softmax=False),
        rtol=1e-10)
    np.testing.assert_allclose(
        lossjax.dice(logits, targets, smooth=2 * smooth, from_logits=True),
        jnp.mean(optax.losses.dice_loss(jnp.asarray(logits), jnp.asarray(targets),
                                        smooth=smooth)),
        rtol=1e-10)


@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.usefixtures("x64")
def test_binary_dice_matches_optax_binary_dice_loss(smooth):
    # binary_dice_loss: sigmoid of [..., 1] logits (or [...] with a channel added), sums over
    # the spatial axes, per example; our dice with C = 1, from_logits=True, smooth = 2s.
    logits, _, targets = _segmentation_batch((3, 4, 5, 1), seed=10)
    np.testing.assert_allclose(
        lossjax.dice(logits, targets, smooth=2 * smooth, from_logits=True, reduction="none"),
        optax.losses.binary_dice_loss(jnp.asarray(logits), jnp.asarray(targets),
                                      smooth=smooth),
        rtol=1e-10)
    np.testing.assert_allclose(
        lossjax.dice(logits, targets, smooth=2 * smooth, from_logits=True, reduction="none"),
        optax.losses.binary_dice_loss(jnp.asarray(logits[..., 0]),
                                      jnp.asarray(targets[..., 0]), smooth=smooth),
        rtol=1e-10)


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 4, 1)])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.usefixtures("x64")
def test_gradients_match_finite_differences_in_float64(shape, from_logits):
    logits, probs, targets = _segmentation_batch(shape, seed=11)
    rng = np.random.default_rng(12)
    soft_t = np.clip(targets + rng.uniform(-0.2, 0.2, size=shape), 0.05, 0.95)
    x = logits if from_logits else probs
    # Jitted with the numbers as arguments: check_grads evaluates the loss and its first and
    # second derivatives many times; both (alpha, beta, smooth) cases share one compilation
    # of each, where eagerly every operation compiles on its own.
    tversky = jax.jit(lambda a, b, al, be, s: lossjax.tversky(
        a, b, alpha=al, beta=be, smooth=s, from_logits=from_logits))
    for alpha, beta, smooth in [(0.3, 0.7, 1.0), (0.5, 0.5, 0.0)]:
        check_grads(lambda a, b, al=alpha, be=beta, s=smooth: tversky(a, b, al, be, s),
                    (x, soft_t), order=2, modes=["rev"])
    check_grads(
        jax.jit(lambda a, b: lossjax.dice(a, b, from_logits=from_logits,
                                          class_weights=np.arange(1.0, shape[-1] + 1),
                                          reduction="sum")),
        (x, soft_t), order=2, modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_dice_gradient_matches_analytic():
    # L_c = 1 − N/D, N = 2Σpt + s, D = Σp + Σt + s:  ∂L/∂p_i = (N − 2 t_i D) / D².
    _, probs, targets = _segmentation_batch((2, 5, 2), seed=13)
    s = 0.7
    g = jax.jit(jax.grad(lambda p: lossjax.dice(p, targets, smooth=s, reduction="sum")))(probs)
    num = 2 * np.sum(probs * targets, axis=1, keepdims=True) + s
    den = np.sum(probs, axis=1, keepdims=True) + np.sum(targets, axis=1, keepdims=True) + s
    expected = (num - 2 * targets * den) / den**2 / 2  # the class mean divides by C = 2
    np.testing.assert_allclose(g, expected, rtol=1e-12)


# ---------------------------------------------------------------- degenerate points


@functools.partial(jax.jit, static_argnames="loss")
def _empty_value_and_grads(loss, p, t, smooth):
    """One compilation per loss, shared by the smooth values (passed as an argument)."""
    return jax.value_and_grad(
        lambda a, b: getattr(lossjax, loss)(a, b, smooth=smooth, reduction="sum"),
        argnums=(0, 1))(p, t)


@pytest.mark.parametrize("loss", ["dice", "tversky"])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_empty_masks_give_zero_loss_and_finite_gradient(loss, smooth):
    fn = getattr(lossjax, loss)
    p = jnp.zeros((2, 3, 3, 2))
    t = jnp.zeros((2, 3, 3, 2))
    value, (gp, gt) = _empty_value_and_grads(loss, p, t, smooth)
    assert value == 0.0
    assert np.all(np.isfinite(gp)) and np.all(np.isfinite(gt))
    if smooth == 0.0:
        # 0/0 is defined as a perfect score; the where branch gives a zero gradient.
        assert np.all(gp == 0) and np.all(gt == 0)
    else:
        # Independent: per class 1 − (k·TP + 1)/(k·TP + α·FP + β·FN + 1) at p = t = 0 has
        # ∂/∂p_i = α (through FP), ∂/∂t_i = β (through FN); dice is k = 2, α = β = 1;
        # the class mean divides by C = 2.
        half = 1.0 if loss == "dice" else 0.5
        np.testing.assert_allclose(gp, half / 2)
        np.testing.assert_allclose(gt, half / 2)
    # Empty target, full prediction: the worst score.
    np.testing.assert_allclose(jax.jit(functools.partial(fn, smooth=0.0))(
        jnp.ones((1, 4, 1)), jnp.zeros((1, 4, 1))), 1.0)


def test_empty_from_logits_is_finite():
    logits = jnp.full((2, 3, 1), -1e4)  # sigmoid -> 0 everywhere
    t = jnp.zeros((2, 3, 1))
    value, g = jax.jit(jax.value_and_grad(lambda x: lossjax.tversky(x, t, smooth=0.0,
                                                                   from_logits=True)))(logits)
    assert np.isfinite(value) and np.all(np.isfinite(g))


# ---------------------------------------------------------------- weights, where, transforms


@pytest.mark.usefixtures("x64")
def test_where_with_explicit_axis_broadcasts_over_kept_axes():
    _, probs, targets = _segmentation_batch((2, 3, 4, 2), seed=15)
    m = np.array([[True, False, True], [False, True, True]])
    expected = _np_class_mean(_np_dice_per_class(probs, targets, 1.0, (2,)))
    value, g = jax.jit(jax.value_and_grad(  # one compiled program, not op by op
        lambda a: lossjax.dice(a, targets, axis=2, where=m)))(probs)
    np.testing.assert_allclose(value, expected[m].mean(), rtol=1e-12)
    assert np.all(g[~m] == 0) and np.all(g[m] != 0)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises():
    p = jnp.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="alpha"):
        lossjax.tversky(p, p, alpha=-0.1)
    with pytest.raises(ValueError, match="beta"):
        lossjax.tversky(p, p, beta=-1.0)
    with pytest.raises(ValueError, match="smooth"):
        lossjax.tversky(p, p, smooth=-1.0)
    with pytest.raises(ValueError, match="smooth"):
        lossjax.dice(p, p, smooth=-0.5)
    with pytest.raises(ValueError, match=r"\(2, 3, 2\).*\(2, 3, 1\)"):
        lossjax.dice(p, jnp.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        lossjax.dice(jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(ValueError, match="class axis"):
        lossjax.dice(p, p, axis=-1)
    with pytest.raises(ValueError, match="out of range"):
        lossjax.tversky(p, p, axis=3)
    with pytest.raises(ValueError, match="repeats"):
        lossjax.tversky(p, p, axis=(1, -2))
    with pytest.raises(ValueError, match=r"class_weights has shape \(3,\)"):
        lossjax.tversky(p, p, class_weights=jnp.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        lossjax.dice(p, p, reduction="batchmean")
    with pytest.raises(ValueError, match="boolean"):
        lossjax.dice(p, p, where=jnp.ones(2))
    with pytest.raises(ValueError, match="weights"):
        lossjax.dice(p, p, weights=jnp.ones(3))


# --- generalized_dice -----------------------------------------------------------------------


def _np_generalized_dice(p, t, smooth=1e-5):
    """Sudre et al. 2017, per example by loops; absent classes take the largest finite weight."""
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    out = []
    for pb, tb in zip(p, t, strict=True):
        pb, tb = pb.reshape(-1, pb.shape[-1]), tb.reshape(-1, tb.shape[-1])
        volume = tb.sum(0)
        w = np.array([1 / v**2 if v > 0 else np.nan for v in volume])
        fill = np.nanmax(w) if np.any(volume > 0) else 1.0
        w = np.where(np.isnan(w), fill, w)
        num = 2 * np.sum(w * (pb * tb).sum(0)) + smooth
        den = np.sum(w * (pb + tb).sum(0)) + smooth
        out.append(1 - num / den if den != 0 else 0.0)
    return np.array(out)


@jax.jit
def _generalized_dice_three_ways(p, t, logits, smooth):
    """Per example, mean, and from logits; one compilation per shape, shared by the smooth
    values (an argument here), where eager calls compile each operation on its own."""
    return (lossjax.generalized_dice(p, t, smooth=smooth, reduction="none"),
            lossjax.generalized_dice(p, t, smooth=smooth),
            lossjax.generalized_dice(logits, t, smooth=smooth, from_logits=True,
                                     reduction="none"))


@pytest.mark.parametrize("shape", [(2, 5, 3), (3, 4, 4, 2), (2, 6, 1)])
@pytest.mark.parametrize("smooth", [0.0, 1e-5, 1.0])
@pytest.mark.usefixtures("x64")
def test_generalized_dice_matches_numpy(shape, smooth):
    _, p, t = _segmentation_batch(shape, seed=40)
    t = np.asarray(t).copy()
    t[0, ..., -1] = 0.0  # a class absent from the first example's target
    expected = _np_generalized_dice(p, t, smooth)
    logits = np.log(np.asarray(p) + 1e-3)
    got, mean, from_logits = _generalized_dice_three_ways(p, t, logits, smooth)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean, expected.mean(), rtol=1e-10)
    np.testing.assert_allclose(
        from_logits, _np_generalized_dice(_np_probs(logits), t, smooth), rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_generalized_dice_with_one_class_is_dice_and_weights_favour_small_classes():
    _, p, t = _segmentation_batch((3, 8, 1), seed=41)
    np.testing.assert_allclose(*jax.jit(lambda p, t: (  # one compiled program
        lossjax.generalized_dice(p, t, smooth=0.0, reduction="none"),
        lossjax.dice(p, t, smooth=0.0, reduction="none")))(p, t), rtol=1e-10)
    # A miss on a 1-pixel class costs as much as a miss on a 7-pixel class.
    t2 = np.zeros((1, 8, 2))
    t2[0, 0, 0] = 1.0
    t2[0, 1:, 1] = 1.0
    miss_small = t2.copy()
    miss_small[0, 0] = [0.0, 1.0]
    miss_large = t2.copy()
    miss_large[0, 1:] = [1.0, 0.0]
    # By hand: w = (1, 1/49); either miss gives 1 − 2·(1/7)/(64/49) = 1 − 2/(64/7) = 50/64,
    # where the class-mean Dice gives 0.533 and 0.889.
    losses = jax.jit(lambda pred: (lossjax.generalized_dice(pred, t2, smooth=0.0),
                                   lossjax.dice(pred, t2, smooth=0.0)))  # shared: same shape
    for pred in (miss_small, miss_large):
        np.testing.assert_allclose(losses(pred)[0], 50 / 64, rtol=1e-12)
    np.testing.assert_allclose(losses(miss_small)[1], (1 + 1 / 15) / 2, rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_generalized_dice_gradients_and_degenerate_points():
    _, p, t = _segmentation_batch((2, 5, 3), seed=42)
    # (jitted: not op by op; smooth an argument so both values share one compilation)
    check_grads(jax.jit(lambda x: lossjax.generalized_dice(x, t)), (np.asarray(p),), order=2,
                modes=["rev"])
    empty = jnp.zeros((2, 4, 3))
    value_and_grad = jax.jit(jax.value_and_grad(
        lambda x, s: lossjax.generalized_dice(x, empty, smooth=s)))
    for smooth in (0.0, 1e-5):
        value, grad = value_and_grad(empty, smooth)
        assert value == 0.0 and np.all(np.isfinite(grad))
    value, grad = jax.jit(jax.value_and_grad(lambda x: lossjax.generalized_dice(
        x, jnp.zeros((2, 4, 3), jnp.float32), from_logits=True)))(jnp.full((2, 4, 3), -1e4))
    assert np.isfinite(value) and np.all(np.isfinite(grad))


