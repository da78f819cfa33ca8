"""linear_distillation_loss equals the dense distillation_loss of the two models' logits
(values and gradients, every divergence, masks, weights, block sizes that do not divide N),
and per_token_logprobs equals the dense log-softmax gather."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossjax

RNG = np.random.default_rng(7)
N, DS, DT, V = 13, 6, 4, 11
HS, WS = RNG.normal(size=(N, DS)), RNG.normal(size=(DS, V)) / 2
HT, WT = RNG.normal(size=(N, DT)), RNG.normal(size=(DT, V))
LABELS = RNG.integers(0, V, N)
LABELS[[2, 7]] = -100
WEIGHTS = np.linspace(0.5, 2.0, N)


def _pair(divergence, temperature, reduction, chunk_size):
    options = {"divergence": divergence, "temperature": temperature, "beta": 0.3,
               "reduction": reduction}

    def blocked(hs, ws, ht, wt):
        return lossjax.linear_distillation_loss(hs, ws, ht, wt, LABELS, chunk_size=chunk_size,
                                                weights=WEIGHTS, **options)

    def dense(hs, ws, ht, wt):
        return lossjax.distillation_loss(hs @ ws, ht @ wt, labels=LABELS, weights=WEIGHTS,
                                         **options)
    return blocked, dense


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl", "jsd"])
def test_blocked_equals_dense(divergence):
    args = tuple(jnp.asarray(x, jnp.float32) for x in (HS, WS, HT, WT))
    for temperature, reduction, chunk_size in ((1.0, "mean", 4), (2.0, "none", 5)):
        blocked, dense = _pair(divergence, temperature, reduction, chunk_size)

        @jax.jit
        def both(*args, blocked=blocked, dense=dense):
            out = []
            for f in (blocked, dense):
                value, vjp = jax.vjp(f, *args)
                out.append((value, vjp(jnp.ones_like(value))))
            return out

        (value, grads), (value_d, grads_d) = both(*args)
        np.testing.assert_allclose(value, value_d, rtol=1e-5, atol=1e-6)
        for g, gd in zip(grads[:2], grads_d[:2], strict=True):
            np.testing.assert_allclose(g, gd, rtol=1e-5, atol=1e-6)
        assert np.all(grads[2] == 0) and np.all(grads[3] == 0)  # the teacher is constant
        assert np.all(np.asarray(grads[0])[[2, 7]] == 0)


def test_masked_tokens_may_hold_nan_and_leading_axes_work():
    mask = np.ones(N, bool)
    mask[[0, 5]] = False
    hs, ht = HS.copy(), HT.copy()
    hs[~mask], ht[~mask] = np.nan, np.inf
    f = jax.jit(jax.value_and_grad(lambda hs, ws: lossjax.linear_distillation_loss(
        hs, ws, ht[:12].reshape(3, 4, DT).astype(np.float32),
        WT.astype(np.float32), where=mask[:12].reshape(3, 4), chunk_size=5), (0, 1)))
    value, (gh, gw) = f(hs[:12].reshape(3, 4, DS).astype(np.float32), WS.astype(np.float32))
    clean = lossjax.distillation_loss(HS[:12][mask[:12]] @ WS, HT[:12][mask[:12]] @ WT)
    np.testing.assert_allclose(value, clean, rtol=1e-5)
    assert gh.shape == (3, 4, DS) and np.all(np.isfinite(gh)) and np.all(np.isfinite(gw))
    assert np.all(np.asarray(gh).reshape(12, DS)[~mask[:12]] == 0)


def test_distillation_errors_name_the_argument():
    args = (HS, WS, HT, WT)
    with pytest.raises(ValueError, match="teacher_weight"):
        lossjax.linear_distillation_loss(HS, WS, HT, WT[:, :5])
    with pytest.raises(ValueError, match="teacher_hidden"):
        lossjax.linear_distillation_loss(HS, WS, HT[:5], WT)
    with pytest.raises(ValueError, match="divergence"):
        lossjax.linear_distillation_loss(*args, divergence="tvd")
    with pytest.raises(ValueError, match="beta"):
        lossjax.linear_distillation_loss(*args, divergence="jsd", beta=0.0)
    with pytest.raises(ValueError, match="labels"):
        lossjax.linear_distillation_loss(*args, LABELS[:5])


def test_per_token_logprobs_equal_the_dense_gather():
    tokens = RNG.integers(0, V, (3, 4))
    h = RNG.normal(size=(3, 4, DS)).astype(np.float32)

    def dense(h, w):
        logp = jax.nn.log_softmax((h @ w) / 0.7, axis=-1)
        return jnp.take_along_axis(logp, tokens[..., None], -1)[..., 0]

    def blocked(h, w):
        return lossjax.per_token_logprobs(h, w, tokens, temperature=0.7, chunk_size=5)

    cot = RNG.normal(size=(3, 4)).astype(np.float32)

    @jax.jit
    def both(h, w):
        out = []
        for f in (blocked, dense):
            value, vjp = jax.vjp(f, h, w)
            out.append((value, vjp(cot)))
        return out

    (lp, grads), (lp_d, grads_d) = both(h, WS.astype(np.float32))
    np.testing.assert_allclose(lp, lp_d, rtol=1e-5, atol=1e-6)
    for g, gd in zip(grads, grads_d, strict=True):
        np.testing.assert_allclose(g, gd, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        lossjax.per_token_logprobs(h, WS, tokens, temperature=0.0)


def test_gradient_wrt_weights_and_sum_reduction():
    args = tuple(jnp.asarray(x, jnp.float32) for x in (HS, WS, HT, WT, WEIGHTS))

    @jax.jit
    def both(hs, ws, ht, wt, w):
        blocked = jax.grad(lambda w, hs: lossjax.linear_distillation_loss(
            hs, ws, ht, wt, LABELS, weights=w, reduction="sum", chunk_size=4), (0, 1))(w, hs)
        dense = jax.grad(lambda w, hs: lossjax.distillation_loss(
            hs @ ws, ht @ wt, labels=LABELS, weights=w, reduction="sum"), (0, 1))(w, hs)
        return blocked, dense

    for g, gd in zip(*both(*args), strict=True):
        np.testing.assert_allclose(g, gd, rtol=1e-5, atol=1e-6)
