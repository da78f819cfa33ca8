"""l1_penalty / l2_penalty against float64 NumPy, with pytree, prefix and function masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import lossjax


def make_params(dtype=jnp.float32):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4))
    w[0, 1] = 0.0  # the kink of |w|: the subgradient there is 0
    return {
        "dense": {"w": jnp.asarray(w, dtype), "b": jnp.asarray(rng.normal(size=4), dtype)},
        "norm": {"scale": jnp.asarray(rng.normal(size=2) + 1.0, dtype)},
    }


def np_l1(leaves):
    return sum(np.sum(np.abs(np.asarray(x, np.float64))) for x in leaves)


def np_l2(leaves):
    return 0.5 * sum(np.sum(np.asarray(x, np.float64) ** 2) for x in leaves)


def weights_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_values_match_numpy():
    params = make_params(jnp.float64)
    leaves = jax.tree.leaves(params)
    np.testing.assert_allclose(lossjax.l1_penalty(params), np_l1(leaves), rtol=1e-14)
    np.testing.assert_allclose(lossjax.l2_penalty(params), np_l2(leaves), rtol=1e-14)


def test_gradients_are_sign_and_w():
    params = make_params()
    g1 = jax.grad(lossjax.l1_penalty)(params)
    g2 = jax.grad(lossjax.l2_penalty)(params)
    for p, a, b in zip(jax.tree.leaves(params), jax.tree.leaves(g1), jax.tree.leaves(g2),
                       strict=True):
        np.testing.assert_array_equal(a, np.sign(np.asarray(p)))  # 0 at w == 0
        np.testing.assert_array_equal(b, np.asarray(p))
    assert g1["dense"]["w"][0, 1] == 0.0


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_gradients_match_finite_differences():
    params = make_params(jnp.float64)
    params["dense"]["w"] = params["dense"]["w"].at[0, 1].set(0.7)  # away from the kink
    check_grads(lossjax.l1_penalty, (params,), order=1, modes=["rev"])
    check_grads(lossjax.l2_penalty, (params,), order=2, modes=["rev"])


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
@pytest.mark.parametrize(
    "mask, selected",
    [
        ({"dense": {"w": True, "b": False}, "norm": {"scale": False}}, [("dense", "w")]),
        ({"dense": {"w": np.True_, "b": True}, "norm": False}, [("dense", "w"), ("dense", "b")]),
        ({"dense": False, "norm": True}, [("norm", "scale")]),  # a prefix of params
        (weights_only, [("dense", "w")]),  # a function of params: skip 1-D leaves
    ],
    ids=["full-tree", "numpy-bools", "prefix", "function"],
)
def test_masks_exclude_what_they_say(mask, selected):
    params = make_params(jnp.float64)
    chosen = [params[a][b] for a, b in selected]
    np.testing.assert_allclose(lossjax.l1_penalty(params, mask=mask), np_l1(chosen), rtol=1e-14)
    np.testing.assert_allclose(lossjax.l2_penalty(params, mask=mask), np_l2(chosen), rtol=1e-14)
    grads = jax.grad(lambda p: lossjax.l2_penalty(p, mask=mask))(params)
    for a in params:
        for b in params[a]:
            expected = params[a][b] if (a, b) in selected else np.zeros(params[a][b].shape)
            np.testing.assert_array_equal(grads[a][b], expected)


@pytest.mark.usefixtures("x64")  # compares with a float64 reference
def test_function_mask_under_jit():
    params = make_params(jnp.float64)
    value = jax.jit(lambda p: lossjax.l1_penalty(p, mask=weights_only))(params)
    np.testing.assert_allclose(value, np_l1([params["dense"]["w"]]), rtol=1e-14)


def test_empty_selection_is_zero():
    params = make_params()
    assert float(lossjax.l2_penalty(params, mask=lambda p: jax.tree.map(lambda _: False, p))) == 0


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_leaves_accumulate_in_float32(dtype):
    params = jax.tree.map(lambda x: (100 * x).astype(dtype), make_params())
    value = lossjax.l2_penalty(params)
    assert value.dtype == jnp.float32
    leaves = [np.asarray(x).astype(np.float64) for x in jax.tree.leaves(params)]
    np.testing.assert_allclose(value, np_l2(leaves), rtol=1e-6)


def test_mask_with_array_leaves_is_rejected():
    params = make_params()
    with pytest.raises(ValueError, match="mask leaves must be Python bools"):
        lossjax.l1_penalty(params, mask=jax.tree.map(lambda x: jnp.ones(x.shape, bool), params))


def test_mask_with_wrong_structure_is_rejected():
    with pytest.raises(ValueError, match="structure of params or a prefix"):
        lossjax.l1_penalty(make_params(), mask={"dense": True, "other": False})
