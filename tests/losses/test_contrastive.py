"""CLIP and SigLIP, dense and in tiles, against float64 NumPy references of the papers'
formulas (OpenCLIP's and big_vision's conventions)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import lossjax
from tests.losses import _task_reference as ref

B, D = 11, 6
RNG = np.random.default_rng(0)
A = RNG.normal(size=(B, D)) / np.sqrt(D)
BB = RNG.normal(size=(B, D)) / np.sqrt(D) + 0.5 * A
SCALE, BIAS = 4.0, -2.0


def _clip(a, b, s, t, **kw):
    return lossjax.clip_loss(a, b, logit_scale=s, **kw)


def _siglip(a, b, s, t, **kw):
    return lossjax.siglip_loss(a, b, logit_scale=s, logit_bias=t, **kw)


def _jitted(loss, block_size):
    """``loss(a, b, **kw)`` at fixed scale and bias, jitted with the reduction static: each
    keyword set compiles once, not every operation on its own as in an eager call."""
    @functools.partial(jax.jit, static_argnames="reduction")
    def f(a, b, weights=None, where=None, reduction="mean"):
        return loss(a, b, SCALE, BIAS, block_size=block_size, weights=weights, where=where,
                    reduction=reduction)
    return f


CASES = [(_clip, lambda a, b, s, t: ref.clip(a, b, s)), (_siglip, ref.siglip)]


@pytest.mark.parametrize("loss, reference", CASES, ids=["clip", "siglip"])
@pytest.mark.parametrize("block_size", [None, 4])
def test_values_reductions_and_gradients(loss, reference, block_size):
    expected = reference(A, BB, SCALE, BIAS)
    ref.check_reductions(_jitted(loss, block_size),
                         (A.astype(np.float32), BB.astype(np.float32)), expected,
                         np.linspace(0.5, 2, B))
    with jax.enable_x64(True):
        args = (jnp.asarray(A), jnp.asarray(BB), jnp.float64(SCALE), jnp.float64(BIAS))
        grads = jax.jit(jax.grad(lambda *x: loss(*x, block_size=block_size, reduction="sum"),
                                 (0, 1, 2, 3)))(*args)
        base = [A, BB, np.float64(SCALE), np.float64(BIAS)]
        for i, g in enumerate(grads):
            def along_i(x, i=i):
                return reference(*[x if j == i else base[j] for j in range(4)]).sum()
            np.testing.assert_allclose(g, ref.numeric_grad(along_i, base[i]), rtol=1e-6,
                                       atol=1e-8)
        if block_size is not None:  # the hand-written custom_vjp
            # jitted: eagerly every operation of the derivative compiles on its own
            check_grads(jax.jit(lambda *x: loss(*x, block_size=block_size)), args, order=1,
                        modes=["rev"], eps=1e-5)


@pytest.mark.parametrize("loss", [_clip, _siglip], ids=["clip", "siglip"])
def test_blocked_equals_dense_in_float32(loss):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(36, 16)).astype(np.float32)
    b = rng.normal(size=(36, 16)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    mask = np.arange(36) % 5 != 2

    def value_and_grads(block_size, where):
        return jax.jit(jax.value_and_grad(
            lambda *x: loss(*x, block_size=block_size, where=where), (0, 1, 2, 3)))(
            a, b, jnp.float32(10.0), jnp.float32(-5.0))

    dense = value_and_grads(None, mask)
    for block_size in (12, 8):  # divides B, does not divide B (unmasked: see above)
        blocked = value_and_grads(block_size, mask)
        for x, y in zip(jax.tree.leaves(blocked), jax.tree.leaves(dense), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * np.max(np.abs(y)))


@pytest.mark.parametrize("loss", [_clip, _siglip], ids=["clip", "siglip"])
@pytest.mark.parametrize("block_size", [None, 4])
def test_where_removes_the_pair_and_blocks_nan(loss, block_size):
    mask = np.arange(B) % 4 != 1
    ref.check_nan_masked(_jitted(loss, block_size), (A.astype(np.float32), BB.astype(np.float32)),
                         mask)


def test_vmap_half_and_extreme_scale():
    a, b = A.astype(np.float32), BB.astype(np.float32)
    per = jax.jit(jax.vmap(lambda a, b: _clip(a, b, SCALE, BIAS, block_size=3)))(
        np.stack([a, b]), np.stack([b, a]))
    np.testing.assert_allclose(per, [ref.clip(A, BB, SCALE).mean(), ref.clip(BB, A, SCALE).mean()],
                               rtol=1e-5)
    # (the output dtype from tracing alone: nothing to compile)
    assert jax.eval_shape(_siglip, jnp.asarray(a, jnp.bfloat16), b, SCALE,
                          BIAS).dtype == jnp.float32
    for v, g in jax.jit(lambda a: [  # the four values and gradients in one compiled program
            jax.value_and_grad(lambda a, f=loss, k=block_size: f(a, b, 1e4, BIAS,
                                                                 block_size=k))(a)
            for loss in (_clip, _siglip) for block_size in (None, 4)])(a):
        assert np.isfinite(v) and np.all(np.isfinite(g))


def test_bad_input_names_the_argument():
    a = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match="embeddings_b"):
        lossjax.clip_loss(a, jnp.zeros((4, 2)), logit_scale=1.0)
    with pytest.raises(ValueError, match="embeddings_a"):
        lossjax.siglip_loss(jnp.zeros(4), jnp.zeros(4), logit_scale=1.0, logit_bias=0.0)
    with pytest.raises(ValueError, match="block_size"):
        lossjax.clip_loss(a, a, logit_scale=1.0, block_size=0)
    with pytest.raises(ValueError, match="logit_scale"):
        lossjax.clip_loss(a, a, logit_scale=-1.0)
    with pytest.raises(ValueError, match="logit_bias"):
        lossjax.siglip_loss(a, a, logit_scale=1.0, logit_bias=jnp.zeros(2))
    with pytest.raises(ValueError, match="where"):
        lossjax.clip_loss(a, a, logit_scale=1.0, where=jnp.ones(3, bool))
