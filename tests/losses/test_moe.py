"""Switch Transformer load balancing and ST-MoE router z-loss against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax
from tests.losses import _task_reference as ref

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(0, 2, (3, 10, 4))  # 3 groups of 10 tokens, 4 experts
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)
TOP1 = PROBS.argmax(-1)
TOP2 = np.argsort(-PROBS, -1)[..., :2]


@pytest.mark.parametrize("idx", [TOP1, TOP2], ids=["top1", "top2"])
def test_load_balancing_values_reductions_and_gradient(idx):
    expected = ref.load_balancing(PROBS, idx, 4)
    ref.check_reductions(lambda p, **kw: lossjax.load_balancing_loss(p, idx, num_experts=4, **kw),
                         (PROBS.astype(np.float32),), expected, np.array([0.5, 1.0, 2.0]))
    # Balanced routing gives k.
    k = 1 if idx.ndim == 2 else idx.shape[-1]
    balanced = np.stack([(np.arange(8) + j) % 4 for j in range(k)], -1)
    balanced = balanced[:, 0] if idx.ndim == 2 else balanced
    np.testing.assert_allclose(
        lossjax.load_balancing_loss(np.full((8, 4), 0.25), balanced, num_experts=4), k,
        rtol=1e-6)
    with jax.enable_x64(True):
        g = jax.grad(lambda p: lossjax.load_balancing_loss(p, idx, num_experts=4, reduction="sum"))(
            jnp.asarray(PROBS))
        np.testing.assert_allclose(g, ref.numeric_grad(
            lambda p: ref.load_balancing(p, idx, 4).sum(), PROBS), rtol=1e-6, atol=1e-9)


def test_load_balancing_token_mask_jit_vmap():
    mask = RNG.uniform(size=(3, 10)) > 0.3
    probs = np.where(mask[..., None], PROBS, np.nan).astype(np.float32)

    def f(p):
        return lossjax.load_balancing_loss(p, TOP2, num_experts=4, where=mask, reduction="none")

    value, g = jax.value_and_grad(lambda p: f(p).sum())(jnp.asarray(probs))
    expected = [ref.load_balancing(PROBS[i][mask[i]], TOP2[i][mask[i]], 4) for i in range(3)]
    np.testing.assert_allclose(f(probs), expected, rtol=1e-5)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~mask] == 0)
    per = jax.jit(jax.vmap(lambda p, i: lossjax.load_balancing_loss(p, i, num_experts=4)))(
        PROBS.astype(np.float32), TOP1)
    np.testing.assert_allclose(per, ref.load_balancing(PROBS, TOP1, 4), rtol=1e-5)
    empty = lossjax.load_balancing_loss(PROBS[0], TOP1[0], num_experts=4,
                                        where=np.zeros(10, bool))
    assert float(empty) == 0.0
    bad = TOP1.copy()
    bad[1, 3] = 4
    out = lossjax.load_balancing_loss(PROBS, bad, num_experts=4, reduction="none")
    assert np.isnan(out[1]) and np.isfinite(out[0]) and np.isfinite(out[2])


def test_router_z_loss_values_and_gradient():
    x = LOGITS.reshape(-1, 4)
    ref.check_reductions(lossjax.router_z_loss, (x.astype(np.float32),), ref.router_z(x),
                         np.linspace(0.5, 2, 30))
    with jax.enable_x64(True):
        g = jax.grad(lambda x: lossjax.router_z_loss(x, reduction="sum"))(jnp.asarray(x))
        np.testing.assert_allclose(g, ref.numeric_grad(lambda x: ref.router_z(x).sum(), x),
                                   rtol=1e-6, atol=1e-7)
    assert np.isfinite(lossjax.router_z_loss(jnp.array([[1e4, -1e4]], jnp.float32)))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="num_experts"):
        lossjax.load_balancing_loss(PROBS, TOP1, num_experts=5)
    with pytest.raises(ValueError, match="expert_indices"):
        lossjax.load_balancing_loss(PROBS, TOP1[:, :5], num_experts=4)
    with pytest.raises(ValueError, match="expert_indices"):
        lossjax.load_balancing_loss(PROBS, TOP1.astype(np.float32), num_experts=4)
    with pytest.raises(ValueError, match="router_logits"):
        lossjax.router_z_loss(jnp.float32(1.0))
