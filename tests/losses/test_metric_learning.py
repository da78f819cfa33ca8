"""triplet_margin, contrastive, ntxent, hinge_embedding against NumPy float64 and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax

# --- independent NumPy float64 references, written from the formulas -----------------------


def np_lp_distance(x, y, p=2.0, eps=1e-6, axis=-1):
    return (np.sum(np.abs(x - y) ** p, axis=axis) + eps) ** (1.0 / p)


def np_triplet(a, pos, neg, margin=1.0, p=2.0, eps=1e-6, swap=False, axis=-1):
    d_pos = np_lp_distance(a, pos, p, eps, axis)
    d_neg = np_lp_distance(a, neg, p, eps, axis)
    if swap:
        d_neg = np.minimum(d_neg, np_lp_distance(pos, neg, p, eps, axis))
    return np.maximum(0.0, d_pos - d_neg + margin)


def np_contrastive(e1, e2, y, margin=1.0, axis=-1):
    d = np.sqrt(np.sum((e1 - e2) ** 2, axis=axis))
    return np.where(y == 1, d**2, np.maximum(0.0, margin - d) ** 2)


def np_ntxent(e, labels, temperature=0.07, valid=None):
    """Per-anchor NT-Xent and the mask of anchors that have a positive, by explicit loops."""
    e = np.asarray(e, np.float64)
    n = len(labels)
    valid = np.ones(n, bool) if valid is None else valid
    unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-8)
    s = unit @ unit.T / temperature
    loss, has_pos = np.zeros(n), np.zeros(n, bool)
    for i in range(n):
        if not valid[i]:
            continue
        negs = [k for k in range(n) if valid[k] and labels[k] != labels[i]]
        pos = [j for j in range(n) if valid[j] and j != i and labels[j] == labels[i]]
        terms = []
        for j in pos:
            denom = np.exp(s[i, j]) + sum(np.exp(s[i, k]) for k in negs)
            terms.append(-np.log(np.exp(s[i, j]) / denom))
        if terms:
            loss[i], has_pos[i] = np.mean(terms), True
    return loss, has_pos


def np_hinge_embedding(x, y, margin=1.0):
    return np.where(y == 1, x, np.maximum(0.0, margin - x))


def _normal(shape, seed, count):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for _ in range(count)]


# --- triplet_margin -----------------------------------------------------------------------


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.usefixtures("x64")
def test_triplet_matches_numpy(p, swap):
    a, pos, neg = _normal((6, 4), 0, 3)
    for margin in (0.0, 1.0, 2.5):
        expected = np_triplet(a, pos, neg, margin, p, 1e-6, swap)
        got = lossjax.triplet_margin(a, pos, neg, margin=margin, p=p, swap=swap,
                                     reduction="none")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            lossjax.triplet_margin(a, pos, neg, margin=margin, p=p, swap=swap),
            expected.mean(), rtol=1e-12, atol=1e-14)


@pytest.mark.usefixtures("x64")
def test_triplet_matches_optax_and_axis():
    a, pos, neg = _normal((2, 5, 3), 1, 3)
    for margin, eps in ((1.0, 1e-6), (0.3, 1e-3)):
        # optax: (Σ (a − b)^norm_degree + eps)^(1/norm_degree), eps inside the sum as here.
        expected = optax.losses.triplet_margin_loss(a, pos, neg, norm_degree=2, margin=margin,
                                                    eps=eps)
        got = lossjax.triplet_margin(a, pos, neg, margin=margin, eps=eps, reduction="none")
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Even p: optax's missing |·| does not matter.
    np.testing.assert_allclose(
        lossjax.triplet_margin(a, pos, neg, p=4.0, reduction="none"),
        optax.losses.triplet_margin_loss(a, pos, neg, norm_degree=4), rtol=1e-12)
    np.testing.assert_allclose(
        lossjax.triplet_margin(a, pos, neg, axis=1, reduction="none"),
        np_triplet(a, pos, neg, axis=1), rtol=1e-12)


@pytest.mark.parametrize("p,swap", [(2.0, False), (1.5, True), (3.0, False)])
@pytest.mark.usefixtures("x64")
def test_triplet_gradients(p, swap):
    a, pos, neg = _normal((4, 3), 2, 3)
    pos = a + 0.3 * pos  # the positive is close and the margin wide: every hinge active
    margin = 6.0
    d_pos = np_lp_distance(a, pos, p)
    d_neg = np.minimum(np_lp_distance(a, neg, p), np_lp_distance(pos, neg, p)) if swap \
        else np_lp_distance(a, neg, p)
    assert np.all(d_pos - d_neg + margin > 0.1)
    check_grads(lambda x, y, z: lossjax.triplet_margin(x, y, z, margin=margin, p=p, swap=swap),
                (a, pos, neg), order=1, modes=["rev", "fwd"])
    # Independent analytic gradient w.r.t. the anchor for p = 2 (no swap):
    # d/da [d(a, pos) − d(a, neg)] = (a − pos)/d_pos − (a − neg)/d_neg.
    if p == 2.0 and not swap:
        g = jax.grad(lambda x: lossjax.triplet_margin(x, pos, neg, margin=margin,
                                                      reduction="sum"))(a)
        expected = (a - pos) / d_pos[:, None] - (a - neg) / d_neg[:, None]
        np.testing.assert_allclose(g, expected, rtol=1e-10)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_triplet_identical_embeddings_are_finite(p, dtype, x64):
    x = jnp.asarray(np.arange(6.0).reshape(2, 3), dtype)
    for swap in (False, True):
        value, grads = jax.value_and_grad(
            lambda a, b, c, s=swap: lossjax.triplet_margin(a, b, c, p=p, swap=s),
            argnums=(0, 1, 2))(x, x, x)
        np.testing.assert_allclose(value, 1.0, rtol=1e-6)
        for g in grads:
            assert np.all(np.isfinite(g))
            np.testing.assert_array_equal(g, 0.0)


def test_triplet_bad_input_raises():
    x = jnp.ones((3, 2))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 1\)"):
        lossjax.triplet_margin(x, jnp.ones((3, 1)), x)
    with pytest.raises(ValueError, match=r"negatives has shape \(2, 2\)"):
        lossjax.triplet_margin(x, x, jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="p must be >= 1"):
        lossjax.triplet_margin(x, x, x, p=0.5)
    with pytest.raises(ValueError, match="margin"):
        lossjax.triplet_margin(x, x, x, margin=-1.0)
    with pytest.raises(ValueError, match="eps"):
        lossjax.triplet_margin(x, x, x, eps=-1e-6)
    with pytest.raises(ValueError, match="reduction"):
        lossjax.triplet_margin(x, x, x, reduction="max")


# --- contrastive --------------------------------------------------------------------------


@pytest.mark.usefixtures("x64")
def test_contrastive_matches_numpy():
    e1, e2 = _normal((8, 3), 4, 2)
    y = np.array([1, 0, 0, 1, 0, 1, 0, 0])
    for margin in (0.0, 1.0, 3.0):
        expected = np_contrastive(e1, e2, y, margin)
        np.testing.assert_allclose(
            lossjax.contrastive(e1, e2, y, margin=margin, reduction="none"), expected,
            rtol=1e-12)
        np.testing.assert_allclose(lossjax.contrastive(e1, e2, y, margin=margin),
                                   expected.mean(), rtol=1e-12)
        np.testing.assert_allclose(
            lossjax.contrastive(e1, e2, y, margin=margin, reduction="sum"), expected.sum(),
            rtol=1e-12)
    np.testing.assert_allclose(
        lossjax.contrastive(e1.T, e2.T, y, axis=0, reduction="none"),
        np_contrastive(e1, e2, y), rtol=1e-12)
    # Float labels work the same way.
    np.testing.assert_allclose(lossjax.contrastive(e1, e2, y.astype(float), margin=2.0),
                               np_contrastive(e1, e2, y, 2.0).mean(), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_contrastive_gradients():
    e1, e2 = _normal((6, 3), 5, 2)
    y = np.array([1, 0, 1, 0, 0, 1])
    margin = 5.0  # every dissimilar pair inside the margin, away from the kink
    d = np.linalg.norm(e1 - e2, axis=1)
    assert np.all(margin - d[y == 0] > 0.1)
    check_grads(jax.jit(lambda a, b: lossjax.contrastive(a, b, y, margin=margin)), (e1, e2),
                order=2, modes=["rev"])
    # Analytic: similar 2(e1 − e2); dissimilar −2(m − d)(e1 − e2)/d.
    g = jax.jit(jax.grad(lambda a: lossjax.contrastive(a, e2, y, margin=margin,
                                                       reduction="sum")))(e1)
    coef = np.where(y == 1, 2.0, -2.0 * (margin - d) / d)[:, None]
    np.testing.assert_allclose(g, coef * (e1 - e2), rtol=1e-10)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_contrastive_identical_embeddings_are_finite(dtype, x64):
    x = jnp.asarray(np.arange(6.0).reshape(2, 3), dtype)
    value, grads = jax.value_and_grad(
        lambda a, b: lossjax.contrastive(a, b, jnp.array([1, 0]), margin=2.0,
                                         reduction="none").sum(), argnums=(0, 1))(x, x)
    np.testing.assert_allclose(value, 4.0)  # 0 for the similar pair, margin² for the other
    for g in grads:
        np.testing.assert_array_equal(g, 0.0)


@pytest.mark.usefixtures("x64")
def test_contrastive_weights_where_jit_vmap_half_and_bad_labels():
    e1, e2 = _normal((5, 2), 6, 2)
    y = np.array([1, 0, 1, 0, 0])
    w = np.array([2.0, 1.0, 0.5, 1.0, 3.0])
    m = np.array([True, True, False, False, True])
    expected = np_contrastive(e1, e2, y, 1.5)

    @jax.jit  # the eager-style calls in one compiled program
    def losses(e1, e2):
        return (lossjax.contrastive(e1, e2, y, margin=1.5, weights=w, where=m),
                jax.grad(lambda a, b: lossjax.contrastive(a, b, y, where=m),
                         argnums=(0, 1))(e1, e2),
                lossjax.contrastive(e1, e2, np.array([1, -1, 0, 2, 0]), reduction="none"))

    weighted, grads, bad_labels = losses(e1, e2)
    np.testing.assert_allclose(weighted, (w * expected)[m].sum() / m.sum(), rtol=1e-12)
    for g in grads:
        assert np.all(g[~m] == 0.0)
    jitted = jax.jit(lambda a, b, c: lossjax.contrastive(a, b, c, margin=1.5, reduction="none"))
    np.testing.assert_allclose(jitted(e1, e2, y), expected, rtol=1e-12)
    batched = jax.jit(jax.vmap(lambda a, b: lossjax.contrastive(a, b, y, margin=1.5)))(
        np.stack([e1, e2]), np.stack([e2, e1]))
    np.testing.assert_allclose(batched, [expected.mean()] * 2, rtol=1e-12)
    v = jax.eval_shape(lossjax.contrastive, jnp.asarray(e1, jnp.bfloat16),
                       jnp.asarray(e2, jnp.bfloat16), y)  # the dtype: nothing to compile
    assert v.dtype == jnp.float32
    got = np.asarray(bad_labels)
    assert np.isnan(got[1]) and np.isnan(got[3]) and np.all(np.isfinite(got[[0, 2, 4]]))


def test_contrastive_bad_input_raises():
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        lossjax.contrastive(x, jnp.ones((3, 4)), jnp.ones(4))
    with pytest.raises(ValueError, match=r"labels has shape \(4, 1\).*\(4,\)"):
        lossjax.contrastive(x, x, jnp.ones((4, 1)))
    with pytest.raises(ValueError, match="margin"):
        lossjax.contrastive(x, x, jnp.ones(4), margin=-0.1)
    with pytest.raises(ValueError, match="reduction"):
        lossjax.contrastive(x, x, jnp.ones(4), reduction=None)


# --- ntxent -------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 2, 2], [2, 0, 1, 0, 2, 1], [0, 1, 0, 1, 0, 1],
                                    [3, 3, 3, 7, 7, 7]])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
@pytest.mark.usefixtures("x64")
def test_ntxent_equal_groups_match_optax(labels, temperature):
    # Equal-sized groups: our mean over anchors equals optax's mean over positive pairs.
    (e,) = _normal((6, 4), 7, 1)
    labels = np.array(labels)
    expected = optax.losses.ntxent(jnp.asarray(e), jnp.asarray(labels), temperature)
    np.testing.assert_allclose(lossjax.ntxent(e, labels, temperature=temperature), expected,
                               rtol=1e-10)
    per_anchor, has_pos = np_ntxent(e, labels, temperature)
    assert has_pos.all()
    np.testing.assert_allclose(
        lossjax.ntxent(e, labels, temperature=temperature, reduction="none"), per_anchor,
        rtol=1e-10)


@pytest.mark.parametrize("labels", [[0, 0, 0, 1, 1, 2], [5, 1, 5, 5, 5, 1, 9]])
@pytest.mark.usefixtures("x64")
def test_ntxent_unequal_groups_match_numpy(labels):
    labels = np.array(labels)
    (e,) = _normal((len(labels), 3), 8, 1)
    per_anchor, has_pos = np_ntxent(e, labels, 0.2)
    np.testing.assert_allclose(lossjax.ntxent(e, labels, temperature=0.2, reduction="none"),
                               per_anchor, rtol=1e-10)
    np.testing.assert_allclose(lossjax.ntxent(e, labels, temperature=0.2),
                               per_anchor[has_pos].mean(), rtol=1e-10)
    np.testing.assert_allclose(lossjax.ntxent(e, labels, temperature=0.2, reduction="sum"),
                               per_anchor.sum(), rtol=1e-10)


@pytest.mark.usefixtures("x64")
def test_ntxent_gradients():
    labels = np.array([0, 0, 0, 1, 1, 2])  # a singleton group included
    (e,) = _normal((6, 3), 9, 1)
    loss = jax.jit(lambda x: lossjax.ntxent(x, labels, temperature=0.5))  # not op by op
    check_grads(loss, (e,), order=2, modes=["rev"])
    # Finite differences of the NumPy reference, independent of JAX.
    g = jax.jit(jax.grad(loss))(e)

    def ref_mean(x):
        per_anchor, has_pos = np_ntxent(x, labels, 0.5)
        return per_anchor[has_pos].mean()

    h = 1e-6
    numeric = np.zeros_like(e)
    for idx in np.ndindex(e.shape):
        step = np.zeros_like(e)
        step[idx] = h
        numeric[idx] = (ref_mean(e + step) - ref_mean(e - step)) / (2 * h)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.usefixtures("x64")
def test_ntxent_degenerate_batches_are_finite(dtype):
    (e,) = _normal((5, 3), 10, 1)
    e = jnp.asarray(e, dtype)

    def value_and_grad(x, labels, reduction="mean", temperature=0.07):
        return jax.value_and_grad(lambda y: jnp.sum(lossjax.ntxent(
            y, jnp.asarray(labels), temperature=temperature, reduction=reduction)))(x)

    labels = np.array([0, 0, 1, 1, 2])
    same = jnp.tile(e[:1], (5, 1))

    @jax.jit  # every case in one compiled program (eagerly: seconds of op-by-op compiles)
    def cases(e, same, zeros):
        return dict(
            one_group=value_and_grad(e, [4, 4, 4, 4, 4]),
            singletons=value_and_grad(e, [0, 1, 2, 3, 4]),
            mixed=value_and_grad(e, labels),
            none=lossjax.ntxent(e, jnp.asarray(labels), reduction="none"),
            same=value_and_grad(same, [0, 0, 1, 1, 1], reduction="none"),
            zeros=value_and_grad(zeros, [0, 0, 1, 1]),
            cold=value_and_grad(e, [0, 0, 1, 1, 2], temperature=1e-3))

    got = cases(e, same, jnp.zeros((4, 3), dtype))
    # One group only: no negatives, so every ℓ_ij = −log 1 = 0.
    value, grad = got["one_group"]
    assert value == 0.0 and np.all(grad == 0.0)
    # Every anchor a singleton: no positives, nothing counted, mean 0.
    value, grad = got["singletons"]
    assert value == 0.0 and np.all(grad == 0.0)
    # A singleton among groups: it is left out of the mean but still a negative for others.
    value, grad = got["mixed"]
    per_anchor, has_pos = np_ntxent(np.asarray(e, np.float64), labels)
    np.testing.assert_allclose(value, per_anchor[has_pos].mean(), rtol=1e-4)
    assert np.all(np.isfinite(grad)) and np.any(grad[4] != 0.0)
    assert got["none"][4] == 0.0
    # Identical embeddings: all s_ij = 1/T, so ℓ_ij = log(1 + #negatives).
    value, grad = got["same"]
    np.testing.assert_allclose(value, 2 * np.log(4.0) + 3 * np.log(3.0), rtol=1e-5)
    assert np.all(np.isfinite(grad))
    # Zero embeddings (clamped norms): s_ij = 0 everywhere.
    value, grad = got["zeros"]
    np.testing.assert_allclose(value, np.log(3.0), rtol=1e-6)
    assert np.all(np.isfinite(grad))
    # Extreme temperature in float32 stays finite.
    v_cold, g_cold = got["cold"]
    assert np.isfinite(v_cold) and np.all(np.isfinite(g_cold))


@pytest.mark.usefixtures("x64")
def test_ntxent_weights_where():
    labels = np.array([0, 0, 1, 1, 2, 2, 1])
    (e,) = _normal((7, 3), 11, 1)
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 2.0])
    # where=False drops the row from the batch: not an anchor, positive or negative.
    m = np.array([True, True, True, False, True, True, True])
    e_nan_free = e.copy()
    e_nan_free[3] = 0.0  # a padded all-zero row

    @jax.jit  # every value and the gradient in one compiled program
    def losses(e, e_nan_free):
        return (lossjax.ntxent(e, labels, temperature=0.3, weights=w, reduction="sum"),
                lossjax.ntxent(e, labels, temperature=0.3, weights=w),
                lossjax.ntxent(e, labels, temperature=0.3, where=m, reduction="none"),
                lossjax.ntxent(e, labels, temperature=0.3, where=m),
                jax.grad(lambda x: lossjax.ntxent(x, labels, where=m, weights=w))(e_nan_free),
                lossjax.ntxent(e, labels, where=np.zeros(7, bool)))

    weighted_sum, weighted_mean, masked, masked_mean, grad, nothing = losses(e, e_nan_free)
    per_anchor, has_pos = np_ntxent(e, labels, 0.3)
    np.testing.assert_allclose(weighted_sum, (w * per_anchor).sum(), rtol=1e-10)
    np.testing.assert_allclose(weighted_mean, (w * per_anchor)[has_pos].sum() / has_pos.sum(),
                               rtol=1e-10)
    per_anchor_m, has_pos_m = np_ntxent(e, labels, 0.3, valid=m)
    np.testing.assert_allclose(masked, per_anchor_m, rtol=1e-10)
    sub_per_anchor, sub_has_pos = np_ntxent(e[m], labels[m], 0.3)
    np.testing.assert_allclose(masked_mean, sub_per_anchor[sub_has_pos].mean(), rtol=1e-10)
    assert np.all(grad[3] == 0.0) and np.all(np.isfinite(grad))
    assert nothing == 0.0


def test_ntxent_bad_input_raises():
    e = jnp.ones((4, 2))
    labels = jnp.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"labels has shape \(3,\).*\(4, 2\)"):
        lossjax.ntxent(e, labels[:3])
    with pytest.raises(ValueError, match=r"\[B, D\].*\(4,\)"):
        lossjax.ntxent(jnp.ones(4), labels)
    with pytest.raises(ValueError, match="integer"):
        lossjax.ntxent(e, labels.astype(float))
    with pytest.raises(ValueError, match="temperature"):
        lossjax.ntxent(e, labels, temperature=0.0)
    with pytest.raises(ValueError, match="reduction"):
        lossjax.ntxent(e, labels, reduction="pairs")
    with pytest.raises(ValueError, match="where"):
        lossjax.ntxent(e, labels, where=jnp.ones((4, 4), bool))


# --- hinge_embedding ----------------------------------------------------------------------


@pytest.mark.usefixtures("x64")
def test_hinge_embedding_matches_numpy_and_gradients():
    rng = np.random.default_rng(13)
    x = rng.uniform(0.0, 2.0, size=(3, 4))
    y = rng.choice([-1, 1], size=(3, 4))
    for margin in (0.5, 1.0, 2.0):
        expected = np_hinge_embedding(x, y, margin)
        np.testing.assert_allclose(
            lossjax.hinge_embedding(x, y, margin=margin, reduction="none"), expected,
            rtol=1e-12)
        np.testing.assert_allclose(lossjax.hinge_embedding(x, y, margin=margin),
                                   expected.mean(), rtol=1e-12)
        np.testing.assert_allclose(
            lossjax.hinge_embedding(x, y, margin=margin, reduction="sum"), expected.sum(),
            rtol=1e-12)
    # {0, 1} labels: 0 is read as −1.
    np.testing.assert_allclose(lossjax.hinge_embedding(x, (y + 1) // 2, reduction="none"),
                               np_hinge_embedding(x, y), rtol=1e-12)
    margin = 1.0
    x = np.where(np.abs(x - margin) < 0.05, x + 0.1, x)  # away from the kink
    g = jax.grad(lambda d: lossjax.hinge_embedding(d, y, margin=margin, reduction="sum"))(x)
    np.testing.assert_array_equal(g, np.where(y == 1, 1.0, np.where(x < margin, -1.0, 0.0)))
    check_grads(lambda d: lossjax.hinge_embedding(d, y, margin=margin), (x,), order=2,
                modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_hinge_embedding_weights_where_jit_half_and_bad_input():
    x = np.array([0.2, 1.5, 0.7, 3.0, 0.0])
    y = np.array([1, -1, -1, 1, 0])
    w = np.array([1.0, 2.0, 3.0, 0.5, 1.0])
    m = np.array([True, False, True, True, True])
    expected = np_hinge_embedding(x, np.where(y == 0, -1, y))

    @jax.jit  # the eager-style calls in one compiled program
    def losses(x):
        return (lossjax.hinge_embedding(x, y, weights=w, where=m),
                jax.grad(lambda d: lossjax.hinge_embedding(d, y, where=m))(x),
                # The kink x = margin gets subgradient 0; finite everywhere.
                jax.grad(lambda d: lossjax.hinge_embedding(d, jnp.array([-1])))(
                    jnp.array([1.0])),
                lossjax.hinge_embedding(x[:2], np.array([2, 1]), reduction="none"))

    weighted, g, g_kink, bad_labels = losses(x)
    np.testing.assert_allclose(weighted, (w * expected)[m].sum() / m.sum(), rtol=1e-12)
    assert g[1] == 0.0
    np.testing.assert_array_equal(g_kink, 0.0)
    jitted = jax.jit(lambda d, t: lossjax.hinge_embedding(d, t, margin=0.8, reduction="none"))
    np.testing.assert_allclose(jitted(x, y), np_hinge_embedding(x, np.where(y == 0, -1, y), 0.8),
                               rtol=1e-12)
    batched = jax.jit(jax.vmap(lambda d: lossjax.hinge_embedding(d, y, reduction="sum")))(
        np.stack([x, 2.0 * x]))
    np.testing.assert_allclose(
        batched, [np_hinge_embedding(v, np.where(y == 0, -1, y)).sum() for v in (x, 2.0 * x)],
        rtol=1e-12)
    # (the output dtype from tracing alone: nothing to compile)
    assert jax.eval_shape(lossjax.hinge_embedding, jnp.asarray(x, jnp.bfloat16),
                          y).dtype == jnp.float32
    got = np.asarray(bad_labels)
    assert np.isnan(got[0]) and np.isfinite(got[1])
    with pytest.raises(ValueError, match=r"\(5,\).*\(5, 1\)"):
        lossjax.hinge_embedding(x, y[:, None])
    with pytest.raises(ValueError, match="reduction"):
        lossjax.hinge_embedding(x, y, reduction="elementwise")


# --- circle ---------------------------------------------------------------------------------


def np_circle(e, labels, gamma=80.0, margin=0.4, frozen=None, valid=None):
    """Per-anchor circle loss by loops (Sun et al. 2020); the weights alpha are computed from
    ``frozen`` embeddings (default: ``e``) so finite differences can hold them constant."""
    def unit(x):
        x = np.asarray(x, np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)

    s = unit(e) @ unit(e).T
    s_frozen = s if frozen is None else unit(frozen) @ unit(frozen).T
    n = len(labels)
    valid = np.ones(n, bool) if valid is None else valid
    loss, kept = np.zeros(n), np.zeros(n, bool)
    for i in range(n):
        pos = [j for j in range(n) if valid[i] and valid[j] and j != i and labels[j] == labels[i]]
        neg = [k for k in range(n) if valid[i] and valid[k] and labels[k] != labels[i]]
        if not pos or not neg:
            continue
        sum_p = sum(np.exp(-gamma * max(0.0, 1 + margin - s_frozen[i, j]) * (s[i, j] - 1 + margin))
                    for j in pos)
        sum_n = sum(np.exp(gamma * max(0.0, s_frozen[i, k] + margin) * (s[i, k] - margin))
                    for k in neg)
        loss[i], kept[i] = np.log1p(sum_p * sum_n), True
    return loss, kept


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 2, 2], [3, 3, 3, 1, 1, 7]])
@pytest.mark.parametrize("gamma,margin", [(80.0, 0.4), (4.0, 0.25)])
@pytest.mark.usefixtures("x64")
def test_circle_matches_numpy(labels, gamma, margin):
    labels = np.array(labels)
    (e,) = _normal((6, 5), 30, 1)
    expected, kept = np_circle(e, labels, gamma, margin)
    got = lossjax.circle(e, labels, gamma=gamma, margin=margin, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lossjax.circle(e, labels, gamma=gamma, margin=margin),
                               expected[kept].mean(), rtol=1e-10)
    # Scale invariance: the embeddings are normalised inside.
    np.testing.assert_allclose(lossjax.circle(3.0 * e, labels, gamma=gamma, margin=margin,
                                              reduction="none"), expected, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_circle_gradient_holds_weights_constant():
    labels = np.array([0, 0, 1, 1, 2, 2, 0])
    (e,) = _normal((7, 4), 31, 1)
    grad = jax.jit(jax.grad(lambda x: lossjax.circle(x, labels, gamma=4.0,
                                                     reduction="sum")))(e)
    h, fd = 1e-6, np.zeros_like(e)
    for idx in np.ndindex(e.shape):
        plus, minus = e.copy(), e.copy()
        plus[idx] += h
        minus[idx] -= h
        fd[idx] = (np_circle(plus, labels, 4.0, frozen=e)[0].sum()
                   - np_circle(minus, labels, 4.0, frozen=e)[0].sum()) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.usefixtures("x64")  # (without it the float64 case silently ran in float32)
def test_circle_degenerate_batches_are_finite(dtype):
    cases = [
        (np.zeros((4, 3)), [0, 0, 1, 1]),                      # zero embeddings
        (np.ones((4, 3)), [0, 0, 1, 1]),                       # identical embeddings
        (np.random.default_rng(0).normal(size=(4, 3)), [0, 0, 0, 0]),  # no negatives
        (np.random.default_rng(1).normal(size=(4, 3)), [0, 1, 2, 3]),  # no positives
    ]
    # one compiled program for the four same-shape cases (eagerly: op-by-op compiles)
    value_and_grad = jax.jit(jax.value_and_grad(lossjax.circle))
    for e, labels in cases:
        e, labels = jnp.asarray(e, dtype), jnp.asarray(labels)
        value, grad = value_and_grad(e, labels)
        assert value.dtype == dtype
        assert np.isfinite(value) and np.all(np.isfinite(grad))
    value = jax.jit(lossjax.circle)(jnp.ones((3, 2), dtype), jnp.array([0, 0, 0]))
    assert value == 0.0  # no anchor has a negative: nothing counts, the mean is 0


@pytest.mark.usefixtures("x64")
def test_circle_where_weights_jit_half_and_bad_input():
    labels = np.array([0, 0, 1, 1, 2, 2])
    (e,) = _normal((6, 4), 32, 1)
    keep = np.array([True, True, True, False, True, True])
    w = np.linspace(0.5, 2.0, 6)

    @jax.jit  # the values and the gradient in one compiled program
    def losses(e):
        return (lossjax.circle(e, labels, where=keep, reduction="none"),
                jax.grad(lambda x: lossjax.circle(x, labels, where=keep))(e),
                lossjax.circle(e, labels, weights=w, reduction="sum"),
                lossjax.circle(e, labels))

    masked, grad, weighted, mean = losses(e)
    expected, kept = np_circle(e, labels, valid=keep)
    np.testing.assert_allclose(masked, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.asarray(grad)[3] == 0.0)
    full, _ = np_circle(e, labels)
    np.testing.assert_allclose(weighted, (w * full).sum(), rtol=1e-10)
    np.testing.assert_allclose(mean, full.mean(), rtol=1e-10)
    # (the output dtype from tracing alone: nothing to compile)
    assert jax.eval_shape(lossjax.circle, jnp.asarray(e, jnp.bfloat16),
                          labels).dtype == jnp.float32
    with pytest.raises(ValueError, match="gamma"):
        lossjax.circle(e, labels, gamma=0.0)
    with pytest.raises(ValueError, match="margin"):
        lossjax.circle(e, labels, margin=1.0)
    with pytest.raises(ValueError, match="integer"):
        lossjax.circle(e, labels.astype(float))
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        lossjax.circle(e[None], labels)


@pytest.mark.usefixtures("x64")
def test_triplet_with_a_distance_function():
    a, pos, neg = _normal((5, 4), 33, 3)

    def cosine_distance(x, y):
        norms = jnp.linalg.norm(x, axis=-1) * jnp.linalg.norm(y, axis=-1)
        return 1.0 - jnp.sum(x * y, -1) / norms

    def np_cos_d(x, y):
        return 1 - np.sum(x * y, -1) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1))

    for swap in (False, True):
        d_neg = np_cos_d(a, neg)
        if swap:
            d_neg = np.minimum(d_neg, np_cos_d(pos, neg))
        expected = np.maximum(0.0, np_cos_d(a, pos) - d_neg + 0.5)
        got = lossjax.triplet_margin(a, pos, neg, margin=0.5, swap=swap, distance=cosine_distance,
                                     reduction="none")
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The feature axis is moved last before the function sees it.
    np.testing.assert_allclose(
        lossjax.triplet_margin(a.T, pos.T, neg.T, axis=0, distance=cosine_distance,
                               reduction="none"),
        lossjax.triplet_margin(a, pos, neg, distance=cosine_distance, reduction="none"),
        rtol=1e-12)
    # The p-norm through `distance` equals the built-in one.
    np.testing.assert_allclose(
        lossjax.triplet_margin(a, pos, neg, distance=lambda x, y: jnp.sqrt(
            jnp.sum((x - y) ** 2, -1) + 1e-6)),
        lossjax.triplet_margin(a, pos, neg), rtol=1e-12)
    with pytest.raises(ValueError, match="distance returned shape"):
        lossjax.triplet_margin(a, pos, neg, distance=lambda x, y: x - y)
