"""cosine_similarity, cosine_distance, cosine_embedding against NumPy float64 and optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax

# --- independent NumPy float64 references, written from the formulas -----------------------


def np_cosine(p, t, axis=-1, eps=1e-8):
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    norm_p = np.maximum(np.sqrt(np.sum(p * p, axis=axis)), eps)
    norm_t = np.maximum(np.sqrt(np.sum(t * t, axis=axis)), eps)
    return np.sum(p * t, axis=axis) / (norm_p * norm_t)


def np_cosine_grad_p(p, t):
    """d cos(p, t) / dp for rows of nonzero p, t: t/(|p||t|) − cos · p/|p|²."""
    norm_p = np.linalg.norm(p, axis=-1, keepdims=True)
    norm_t = np.linalg.norm(t, axis=-1, keepdims=True)
    cos = np.sum(p * t, axis=-1, keepdims=True) / (norm_p * norm_t)
    return t / (norm_p * norm_t) - cos * p / norm_p**2


def np_cosine_embedding(x1, x2, y, margin=0.0):
    cos = np_cosine(x1, x2)
    return np.where(y == 1, 1.0 - cos, np.maximum(0.0, cos - margin))


def _pair(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), rng.normal(size=shape)


# --- cosine_similarity / cosine_distance --------------------------------------------------


@pytest.mark.parametrize("shape,axis", [((5, 3), -1), ((2, 3, 4), 1), ((4,), 0)])
@pytest.mark.usefixtures("x64")
def test_cosine_matches_numpy_and_optax(shape, axis):
    p, t = _pair(shape, 0)
    expected = np_cosine(p, t, axis)
    sim, dist, sim_mean, dist_sum, optax_sim, optax_dist = jax.jit(lambda p, t: (  # one program
        lossjax.cosine_similarity(p, t, axis=axis, reduction="none"),
        lossjax.cosine_distance(p, t, axis=axis, reduction="none"),
        lossjax.cosine_similarity(p, t, axis=axis),
        lossjax.cosine_distance(p, t, axis=axis, reduction="sum"),
        # optax clamps the squared norm: epsilon = eps**2 maps onto our per-norm clamp.
        optax.losses.cosine_similarity(p, t, epsilon=1e-16, axis=axis),
        optax.losses.cosine_distance(p, t, epsilon=1e-16, axis=axis)))(p, t)
    np.testing.assert_allclose(sim, expected, rtol=1e-12)
    np.testing.assert_allclose(dist, 1.0 - expected, rtol=1e-12)
    np.testing.assert_allclose(sim_mean, expected.mean(), rtol=1e-12)
    np.testing.assert_allclose(dist_sum, (1.0 - expected).sum(), rtol=1e-12)
    np.testing.assert_allclose(sim, optax_sim, rtol=1e-12)
    np.testing.assert_allclose(dist, optax_dist, rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_cosine_clamp_matches_optax_for_tiny_vectors():
    # Norms below eps are clamped: both conventions agree with the per-norm formula.
    p = np.array([[1e-3, 2e-3], [3.0, -1.0]])
    t = np.array([[0.5, 0.1], [1e-4, 0.0]])
    eps = 0.1
    got, optax_got = jax.jit(lambda p, t: (  # one compiled program, not op by op
        lossjax.cosine_similarity(p, t, eps=eps, reduction="none"),
        optax.losses.cosine_similarity(p, t, epsilon=eps**2)))(p, t)
    np.testing.assert_allclose(got, np_cosine(p, t, eps=eps), rtol=1e-12)
    np.testing.assert_allclose(got, optax_got, rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_cosine_gradients():
    p, t = _pair((4, 3), 1)
    grad, grad_d = jax.jit(lambda p: (  # both gradients in one compiled program
        jax.grad(lambda a: lossjax.cosine_similarity(a, t, reduction="sum"))(p),
        jax.grad(lambda a: lossjax.cosine_distance(a, t, reduction="sum"))(p)))(p)
    np.testing.assert_allclose(grad, np_cosine_grad_p(p, t), rtol=1e-10)
    np.testing.assert_allclose(grad_d, -np_cosine_grad_p(p, t), rtol=1e-10)
    # jitted: eagerly every operation of each derivative compiles on its own
    check_grads(jax.jit(lambda a, b: lossjax.cosine_similarity(a, b)), (p, t), order=2,
                modes=["rev"])
    check_grads(jax.jit(lambda a, b: lossjax.cosine_distance(a, b, axis=0)), (p, t), order=1,
                modes=["rev", "fwd"])


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_cosine_zero_vector_is_finite(dtype):
    p = jnp.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]], dtype)
    t = jnp.array([[1.0, -1.0, 2.0], [0.0, 0.0, 0.0]], dtype)
    for fn, zero_value in ((lossjax.cosine_similarity, 0.0), (lossjax.cosine_distance, 1.0)):
        @jax.jit  # the values and gradients in one compiled program, not op by op
        def values_and_grads(p, t, f=fn):
            return (f(p, t, reduction="none"),
                    jax.grad(lambda a, b: f(a, b), argnums=(0, 1))(p, t),
                    jax.grad(lambda a: f(a, jnp.zeros_like(a)))(jnp.zeros((2, 3), dtype)))

        values, grads, both_zero = values_and_grads(p, t)
        np.testing.assert_array_equal(values, [zero_value, zero_value])
        assert all(np.all(np.isfinite(g)) for g in grads)
        assert np.all(np.isfinite(both_zero))


@pytest.mark.usefixtures("x64")
def test_cosine_distance_parallel_is_zero_and_non_negative():
    p, t = _pair((6, 4), 2)
    distance = jax.jit(lambda p, t: lossjax.cosine_distance(p, t, reduction="none"))  # reused
    np.testing.assert_allclose(distance(p, 3.0 * p), 0.0, atol=1e-12)
    np.testing.assert_allclose(distance(p, -p), 2.0, rtol=1e-12)
    assert np.all(np.asarray(distance(p, t)) >= -1e-12)


def test_cosine_bad_input_raises():
    for fn in (lossjax.cosine_similarity, lossjax.cosine_distance):
        with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
            fn(jnp.zeros(3), jnp.zeros((3, 1)))
        with pytest.raises(ValueError, match="reduction"):
            fn(jnp.ones(3), jnp.ones(3), reduction="avg")
        with pytest.raises(ValueError, match="eps"):
            fn(jnp.ones(3), jnp.ones(3), eps=0.0)
        with pytest.raises(ValueError, match="axis"):
            fn(jnp.ones((2, 3)), jnp.ones((2, 3)), axis=2)
        # (A mask of the arrays' rank is optax's per-feature mask: a valid input.)
        with pytest.raises(ValueError, match="where"):
            fn(jnp.ones((2, 3)), jnp.ones((2, 3)), where=jnp.ones((3,), bool))
        with pytest.raises(ValueError, match="where"):
            fn(jnp.ones((2, 3)), jnp.ones((2, 3)), where=jnp.ones((2, 3), jnp.float32))


# --- cosine_embedding ---------------------------------------------------------------------


@pytest.mark.usefixtures("x64")
def test_cosine_embedding_matches_numpy():
    x1, x2 = _pair((8, 3), 6)
    y = np.array([1, -1, 1, -1, -1, 1, -1, -1])
    margins = (0.0, 0.3, -0.5)

    @jax.jit  # every value in one compiled program (the margins stay Python floats)
    def values(x1, x2, y):
        return ([tuple(lossjax.cosine_embedding(x1, x2, y, margin=margin, reduction=r)
                       for r in ("none", "mean", "sum")) for margin in margins],
                lossjax.cosine_embedding(x1, x2, (y + 1) // 2, margin=0.3, reduction="none"),
                lossjax.cosine_embedding(x1.T, x2.T, y, axis=0, reduction="none"))

    per_margin, zero_one_labels, axis0 = values(x1, x2, y)
    for margin, (got, mean, total) in zip(margins, per_margin, strict=True):
        expected = np_cosine_embedding(x1, x2, y, margin)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        np.testing.assert_allclose(mean, expected.mean(), rtol=1e-12)
        np.testing.assert_allclose(total, expected.sum(), rtol=1e-12)
    # {0, 1} labels: 0 is read as −1.
    np.testing.assert_allclose(zero_one_labels, np_cosine_embedding(x1, x2, y, 0.3), rtol=1e-12)
    # Feature axis elsewhere.
    np.testing.assert_allclose(axis0, np_cosine_embedding(x1, x2, y), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_cosine_embedding_gradients():
    x1, x2 = _pair((6, 3), 7)
    y = np.array([1, -1, 1, -1, -1, 1])
    margin = -0.9  # cos − margin > 0 for these pairs, away from the kink
    cos = np_cosine(x1, x2)
    assert np.all(np.abs(cos - margin)[y == -1] > 1e-2)
    g = jax.jit(jax.grad(lambda a: lossjax.cosine_embedding(a, x2, y, margin=margin,
                                                            reduction="sum")))(x1)
    sign = np.where(y == 1, -1.0, (cos > margin).astype(float))[:, None]
    np.testing.assert_allclose(g, sign * np_cosine_grad_p(x1, x2), rtol=1e-10)
    # jitted: eagerly every operation of each derivative compiles on its own
    check_grads(jax.jit(lambda a, b: lossjax.cosine_embedding(a, b, y, margin=margin)),
                (x1, x2), order=2, modes=["rev"])


@pytest.mark.usefixtures("x64")
def test_cosine_embedding_weights_where_jit_and_degenerate():
    x1, x2 = _pair((5, 4), 8)
    y = np.array([1, -1, -1, 1, -1])
    w = np.array([0.5, 1.0, 2.0, 3.0, 1.5])
    m = np.array([True, True, False, True, False])
    expected = np_cosine_embedding(x1, x2, y)
    weighted, g = jax.jit(lambda x1: (  # the value and the gradient in one program
        lossjax.cosine_embedding(x1, x2, y, weights=w, where=m),
        jax.grad(lambda a: lossjax.cosine_embedding(a, x2, y, where=m))(x1)))(x1)
    np.testing.assert_allclose(weighted, (w * expected)[m].sum() / m.sum(), rtol=1e-12)
    assert np.all(g[~m] == 0.0)
    jitted = jax.jit(lambda a, b, c: lossjax.cosine_embedding(a, b, c, margin=0.2))
    np.testing.assert_allclose(jitted(x1, x2, y), np_cosine_embedding(x1, x2, y, 0.2).mean(),
                               rtol=1e-12)
    batched = jax.jit(jax.vmap(lambda a, b: lossjax.cosine_embedding(a, b, y, reduction="sum")))(
        np.stack([x1, x2]), np.stack([x2, -x1]))
    np.testing.assert_allclose(
        batched, [np_cosine_embedding(x1, x2, y).sum(), np_cosine_embedding(x2, -x1, y).sum()],
        rtol=1e-12)
    zero = jnp.zeros((2, 4))
    value, grads = jax.jit(jax.value_and_grad(
        lambda a, b: lossjax.cosine_embedding(a, b, jnp.array([1, -1])), argnums=(0, 1)))(
            zero, zero)
    np.testing.assert_allclose(value, 0.5)  # (1 − 0 + max(0, 0 − 0)) / 2
    assert all(np.all(np.isfinite(gr)) for gr in grads)
    # (the output dtype from tracing alone: nothing to compile)
    v = jax.eval_shape(lossjax.cosine_embedding, jnp.asarray(x1, jnp.bfloat16),
                       jnp.asarray(x2, jnp.bfloat16), y)
    assert v.dtype == jnp.float32


def test_cosine_embedding_invalid_label_is_nan():
    x1, x2 = _pair((3, 2), 9)
    got = np.asarray(jax.jit(lambda x1, x2, y: lossjax.cosine_embedding(  # not op by op
        x1, x2, y, reduction="none"))(x1, x2, np.array([1, 2, -1])))
    assert np.isnan(got[1]) and np.all(np.isfinite(got[[0, 2]]))


def test_cosine_embedding_bad_input_raises():
    x = jnp.ones((4, 3))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 2\)"):
        lossjax.cosine_embedding(x, jnp.ones((4, 2)), jnp.ones(4))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\).*\(4,\)"):
        lossjax.cosine_embedding(x, x, jnp.ones(3))
    with pytest.raises(ValueError, match="margin"):
        lossjax.cosine_embedding(x, x, jnp.ones(4), margin=1.5)
    with pytest.raises(ValueError, match="reduction"):
        lossjax.cosine_embedding(x, x, jnp.ones(4), reduction="mean ")
