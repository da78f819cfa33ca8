"""ranking_softmax (listwise) and margin_ranking (pairwise)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import lossjax
from tests import _reference as ref


def _lists(shape=(5, 6), seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=shape)
    y = rng.integers(0, 4, size=shape).astype(np.float64)
    mask = rng.random(shape) > 0.3
    w = rng.uniform(0.5, 2.0, size=shape)
    return s, y, mask, w


@pytest.mark.usefixtures("x64")
def test_ranking_softmax_matches_numpy_and_optax():
    s, y, mask, w = _lists()
    mask[3] = False  # a list with no valid item
    expected = ref.ranking_softmax(s, y, mask, w)
    got = lossjax.ranking_softmax(s, y, item_mask=mask, item_weights=w, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    has_items = mask.any(-1)
    np.testing.assert_allclose(lossjax.ranking_softmax(s, y, item_mask=mask, item_weights=w),
                               expected[has_items].mean(), rtol=1e-12)
    np.testing.assert_allclose(lossjax.ranking_softmax(s, y, item_mask=mask, item_weights=w),
                               optax.losses.ranking_softmax_loss(s, y, where=mask, weights=w),
                               rtol=1e-12)
    np.testing.assert_allclose(lossjax.ranking_softmax(s, y, reduction="sum"),
                               optax.losses.ranking_softmax_loss(s, y, reduce_fn=jnp.sum),
                               rtol=1e-12)
    np.testing.assert_allclose(lossjax.ranking_softmax(s, y, reduction="none"),
                               ref.ranking_softmax(s, y), rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_ranking_softmax_axis_list_weights_and_where():
    s, y, mask, w = _lists((4, 5), seed=1)
    per = ref.ranking_softmax(s, y)
    np.testing.assert_allclose(lossjax.ranking_softmax(s.T, y.T, axis=0, reduction="none"),
                               per, rtol=1e-12)
    lw = np.array([1.0, 0.5, 2.0, 0.0])
    np.testing.assert_allclose(lossjax.ranking_softmax(s, y, weights=lw, reduction="sum"),
                               (lw * per).sum(), rtol=1e-12)
    keep = np.array([True, False, True, True])
    np.testing.assert_allclose(lossjax.ranking_softmax(s, y, where=keep), per[keep].mean(),
                               rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_ranking_softmax_gradients_finite_and_zero_where_masked():
    s, y, mask, w = _lists((4, 5), seed=2)
    mask[1] = False
    check_grads(lambda x: lossjax.ranking_softmax(x, y, item_mask=mask, item_weights=w), (s,),
                order=2, modes=["rev"])
    grad = jax.grad(lambda x: lossjax.ranking_softmax(x, y, item_mask=mask))(s)
    assert np.all(np.isfinite(grad))
    assert np.all(np.asarray(grad)[~mask] == 0.0)
    # Gradient of -sum y log softmax(s) is softmax(s) * sum(y) - y (one unmasked list).
    g0 = jax.grad(lambda x: lossjax.ranking_softmax(x, y, reduction="sum"))(s)
    np.testing.assert_allclose(g0, ref.softmax(s) * y.sum(-1, keepdims=True) - y, rtol=1e-10,
                               atol=1e-12)
    # Every list empty: loss 0 and a zero gradient, no NaN.
    none = np.zeros_like(mask)
    value, grad = jax.value_and_grad(
        lambda x: lossjax.ranking_softmax(x, y, item_mask=none))(s)
    assert value == 0.0 and np.all(np.asarray(grad) == 0.0)


@pytest.mark.usefixtures("x64")
def test_ranking_softmax_bad_input_half_jit_vmap():
    s, y, mask, _ = _lists((3, 4), seed=3)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 1\)"):
        lossjax.ranking_softmax(s, y[:, :1])
    with pytest.raises(ValueError, match="item_mask must be a boolean"):
        lossjax.ranking_softmax(s, y, item_mask=mask.astype(int))
    with pytest.raises(ValueError, match="item_weights"):
        lossjax.ranking_softmax(s, y, item_weights=np.ones((2, 4)))
    with pytest.raises(ValueError, match="where"):
        lossjax.ranking_softmax(s, y, where=np.ones(4, bool))
    assert lossjax.ranking_softmax(jnp.asarray(s, jnp.float16), jnp.asarray(y, jnp.float16)).dtype \
        == jnp.float32
    np.testing.assert_allclose(jax.jit(lossjax.ranking_softmax)(s, y),
                               ref.ranking_softmax(s, y).mean(), rtol=1e-12)
    batched = jax.vmap(lambda a, b: lossjax.ranking_softmax(a, b, reduction="none"))(s, y)
    np.testing.assert_allclose(batched, ref.ranking_softmax(s, y), rtol=1e-12)


@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.usefixtures("x64")
def test_margin_ranking_matches_numpy(margin):
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    y = rng.choice([-1.0, 1.0], size=(3, 5))
    expected = ref.margin_ranking(a, b, y, margin)
    np.testing.assert_allclose(lossjax.margin_ranking(a, b, y, margin=margin, reduction="none"),
                               expected, rtol=1e-12)
    np.testing.assert_allclose(lossjax.margin_ranking(a, b, y, margin=margin),
                               expected.mean(), rtol=1e-12)
    # {0, 1} labels: 0 is read as -1.
    np.testing.assert_allclose(lossjax.margin_ranking(a, b, (y > 0).astype(float),
                                                      margin=margin, reduction="none"),
                               expected, rtol=1e-12)
    check_grads(lambda p, q: lossjax.margin_ranking(p, q, y, margin=margin), (a, b), order=1,
                modes=["rev"])
    ga, gb = jax.grad(lambda p, q: lossjax.margin_ranking(p, q, y, margin=margin,
                                                          reduction="sum"), argnums=(0, 1))(a, b)
    active = expected > 0
    np.testing.assert_allclose(ga, -y * active)
    np.testing.assert_allclose(gb, y * active)


def test_margin_ranking_kink_where_and_bad_input():
    a, b, y = jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]), jnp.array([1.0, -1.0])
    grad = jax.grad(lambda p: lossjax.margin_ranking(p, b, y, reduction="sum"))(a)
    assert grad[0] == 0.0  # subgradient 0 at the hinge
    m = jnp.array([False, True])
    np.testing.assert_allclose(lossjax.margin_ranking(a, b, y, where=m), 4.0 / 2 * 1.0)
    half = [x.astype(jnp.bfloat16) for x in (a, b, y)]
    assert lossjax.margin_ranking(*half).dtype == jnp.float32
    with pytest.raises(ValueError, match="margin"):
        lossjax.margin_ranking(a, b, y, margin=-1.0)
    with pytest.raises(ValueError, match=r"scores1 has shape \(2,\) but labels"):
        lossjax.margin_ranking(a, b, y[:1])
