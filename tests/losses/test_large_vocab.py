"""linear_cross_entropy: the value and gradients of cross-entropy(hidden @ weight, labels)
without the [N, V] logits.

Checked three ways: against a float64 NumPy reference written from the formula (value and
the closed-form gradients), against lossjax's own softmax_cross_entropy_with_integer_labels
applied to the materialised logits (value and autodiff gradients, float32 and float64),
and against finite differences. Memory is checked from XLA's compiled memory analysis.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import lossjax
from lossjax.losses._large_vocab import default_chunk_size
from tests._reference import f64

lce = lossjax.linear_cross_entropy


# ----- references -----------------------------------------------------------------------

def np_reference(h, w, y, *, ignore_index=None, where=None, weights=None, z_loss=0.0,
                 label_smoothing=0.0, softcap=None, reduction="mean"):
    """float64 NumPy: (value, dL/dh, dL/dw, per-token lse), written from the formula.

    Per token: loss = (1-ε)(lse - x_y) + ε(lse - mean x) + z·lse², x = c·tanh(h·W/c);
    ∂loss/∂x = (1 + 2z·lse)·p - (1-ε)·onehot(y) - ε/V; ∂x/∂s = 1 - (x/c)².
    """
    h, w = f64(h), f64(w)
    batch, d = h.shape[:-1], h.shape[-1]
    h2, y2 = h.reshape(-1, d), np.asarray(y).reshape(-1)
    v = w.shape[1]
    s = h2 @ w
    x = s if softcap is None else softcap * np.tanh(s / softcap)
    m = x.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[:, 0]
    kept = np.ones_like(y2, bool) if ignore_index is None else y2 != ignore_index
    valid = (y2 >= 0) & (y2 < v)
    ys = np.where(valid & kept, y2, 0)
    onehot = np.eye(v)[ys]
    eps = label_smoothing
    loss = (1 - eps) * (lse - x[np.arange(len(ys)), ys]) + eps * (lse - x.mean(-1)) \
        + z_loss * lse**2
    loss = np.where(kept & ~valid, np.nan, loss)
    mask = kept if where is None else kept & np.broadcast_to(where, batch).reshape(-1)
    wts = np.ones(len(ys)) if weights is None else np.broadcast_to(f64(weights), batch).reshape(-1)
    count = max(mask.sum(), 1)
    coef = {"mean": wts / count, "sum": wts, "none": wts}[reduction] * mask
    per = np.where(mask, loss * wts, 0.0)
    value = {"mean": per.sum() / count, "sum": per.sum(), "none": per.reshape(batch)}[reduction]
    p = np.exp(x - lse[:, None])
    g = (1 + 2 * z_loss * lse)[:, None] * p - (1 - eps) * onehot - eps / v
    if softcap is not None:
        g = g * (1 - (x / softcap) ** 2)
    g = g * np.where(kept & ~valid, 0.0, coef)[:, None]
    return value, (g @ w.T).reshape(h.shape), h2.T @ g, lse.reshape(batch)


def materialised(h, w, y, *, softcap=None, **kwargs):
    """The naive version: lossjax's integer-label cross-entropy on the full logits."""
    x = h @ w
    if softcap is not None:
        x = softcap * jnp.tanh(x / softcap)
    return lossjax.softmax_cross_entropy_with_integer_labels(x, y, **kwargs)


def make(n_shape, d, v, dtype=jnp.float32, seed=0, scale=1.0):
    return _make(tuple(n_shape), d, v, dtype, seed, scale)


# One compiled program per set of arguments (eagerly, each random draw, cast and product
# compiles on its own for every new shape: ~0.5 s a call).
@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _make(n_shape, d, v, dtype, seed, scale):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    h = jax.random.normal(k1, (*n_shape, d)).astype(dtype)
    w = (jax.random.normal(k2, (d, v)) * (scale / np.sqrt(d))).astype(dtype)
    y = jax.random.randint(k3, n_shape, 0, v)
    return h, w, y


def scalarise(out, reduction, seed=1):
    """A scalar whose cotangent on "none" outputs is random (not all ones)."""
    if reduction != "none":
        return out
    return jnp.sum(out * jax.random.uniform(jax.random.PRNGKey(seed), out.shape, out.dtype))


def assert_close(a, b, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rtol, atol=atol)


# ----- value and gradients --------------------------------------------------------------

CASES = [  # (token shape, D, V, chunk_size, reduction)
    ((37,), 8, 50, 8, "mean"),        # N not a multiple of the block; several blocks
    ((37,), 8, 50, 8, "none"),
    ((4, 9), 16, 130, 5, "sum"),      # batched hidden [..., D]
    ((4, 9), 16, 130, 5, "none"),
    ((24,), 8, 1000, None, "mean"),   # automatic block (one block here)
    ((7,), 4, 33, 1, "none"),         # one token per block
    ((5,), 8, 20, 64, "sum"),         # block larger than N
]
OPTIONS = [  # (options, reduction)
    ({}, "mean"),
    ({}, "none"),
    ({"ignore_index": 3, "z_loss": 1e-2}, "sum"),
    ({"label_smoothing": 0.2, "softcap": 2.0}, "none"),
    ({"ignore_index": 3, "z_loss": 1e-3, "label_smoothing": 0.1, "softcap": 5.0}, "mean"),
    ({"ignore_index": 3, "z_loss": 1e-3, "label_smoothing": 0.1, "softcap": 5.0}, "none"),
]


def _call(h, w, y, *, chunk, softcap=None, **kw):
    return lce(h, w, y, chunk_size=chunk, logit_softcap=softcap, **kw)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"N{c[0]}-D{c[1]}-V{c[2]}-c{c[3]}-{c[4]}")
@pytest.mark.usefixtures("x64")
def test_matches_numpy_reference_float64(case):
    n_shape, d, v, chunk, reduction = case
    h, w, y = make(n_shape, d, v, jnp.float64, scale=3.0)
    y = y.at[(0,) * len(n_shape)].set(3)  # the ignored class appears at least once
    kw = {"ignore_index": 3, "z_loss": 1e-2, "label_smoothing": 0.1, "softcap": 4.0}
    cot = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), n_shape, jnp.float64))

    @jax.jit
    def value_and_grads(h, w):
        out, vjp = jax.vjp(lambda h, w: _call(h, w, y, chunk=chunk, reduction=reduction,
                                              **kw), h, w)
        return out, vjp(cot if reduction == "none" else jnp.ones((), out.dtype))

    value, (gh, gw) = value_and_grads(h, w)
    ref_value = np_reference(h, w, y, reduction=reduction, **kw)[0]
    # Σ cot_i · loss_i is the "sum" reduction with per-token weights cot.
    _, ref_dh, ref_dw, _ = (np_reference(h, w, y, reduction="sum", weights=cot, **kw)
                            if reduction == "none"
                            else np_reference(h, w, y, reduction=reduction, **kw))
    assert value.shape == (n_shape if reduction == "none" else ())
    assert_close(value, ref_value, 1e-12, 1e-12)
    assert_close(gh, ref_dh, 1e-10, 1e-12)
    assert_close(gw, ref_dw, 1e-10, 1e-12)


@pytest.mark.parametrize(("options", "reduction"), OPTIONS,
                         ids=lambda o: ("-".join(o) or "plain") if isinstance(o, dict) else o)
def test_matches_materialised_cross_entropy_float32(options, reduction):
    h, w, y = make((37,), 16, 75, jnp.float32, scale=4.0)
    y = y.at[0].set(3)
    opts = dict(options)
    softcap = opts.pop("softcap", None)

    def fast(h, w):
        return scalarise(lce(h, w, y, chunk_size=8, logit_softcap=softcap,
                             reduction=reduction, **opts), reduction)

    def naive(h, w):
        return scalarise(materialised(h, w, y, softcap=softcap, reduction=reduction, **opts),
                         reduction)

    v1, (gh1, gw1) = jax.jit(jax.value_and_grad(fast, (0, 1)))(h, w)
    v2, (gh2, gw2) = jax.jit(jax.value_and_grad(naive, (0, 1)))(h, w)
    assert v1.dtype == gh1.dtype == gw1.dtype == jnp.float32
    assert_close(v1, v2, 1e-5)
    assert_close(gh1, gh2, 1e-5, 1e-6 * float(jnp.max(jnp.abs(gh2))))
    assert_close(gw1, gw2, 1e-5, 1e-6 * float(jnp.max(jnp.abs(gw2))))


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.usefixtures("x64")
def test_matches_materialised_float64_with_where_and_weights(reduction):
    h, w, y = make((3, 11), 8, 29, jnp.float64, scale=3.0)
    where = jax.random.bernoulli(jax.random.PRNGKey(5), 0.7, (3, 11))
    weights = jax.random.uniform(jax.random.PRNGKey(6), (11,), jnp.float64)
    kw = {"where": where, "ignore_index": 2, "z_loss": 1e-3, "label_smoothing": 0.05}

    def fast(h, w, weights):
        return scalarise(lce(h, w, y, chunk_size=4, weights=weights, reduction=reduction,
                             **kw), reduction)

    def naive(h, w, weights):
        return scalarise(materialised(h, w, y, weights=weights, reduction=reduction, **kw),
                         reduction)

    v1, g1 = jax.jit(jax.value_and_grad(fast, (0, 1, 2)))(h, w, weights)
    v2, g2 = jax.jit(jax.value_and_grad(naive, (0, 1, 2)))(h, w, weights)
    assert_close(v1, v2, 1e-12)
    for a, b in zip(g1, g2, strict=True):
        assert_close(a, b, 1e-11, 1e-14)


@pytest.mark.usefixtures("x64")
def test_finite_differences_float64():
    h, w, y = make((6,), 5, 13, jnp.float64, scale=2.0)

    for reduction in ("mean", "none"):
        def f(h, w, reduction=reduction):
            out = lce(h, w, y, chunk_size=4, z_loss=0.05, label_smoothing=0.3,
                      logit_softcap=3.0, reduction=reduction)
            return scalarise(out, reduction)

        check_grads(jax.jit(f), (h, w), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


@pytest.mark.usefixtures("x64")
def test_return_lse_and_its_gradient():
    h, w, y = make((2, 10), 8, 40, jnp.float64, scale=3.0)
    loss, lse = jax.jit(lambda h, w: lce(h, w, y, return_lse=True, chunk_size=3,
                                         logit_softcap=2.0))(h, w)
    ref_value, _, _, ref_lse = np_reference(h, w, y, softcap=2.0)
    assert lse.shape == (2, 10)
    assert_close(loss, ref_value, 1e-12)
    assert_close(lse, ref_lse, 1e-12)

    def fast(h, w):
        loss, lse = lce(h, w, y, return_lse=True, chunk_size=3, logit_softcap=2.0)
        return loss + 0.1 * jnp.mean(lse**2)

    def naive(h, w):
        x = 2.0 * jnp.tanh((h @ w) / 2.0)
        return materialised(h, w, y, softcap=2.0) + 0.1 * jnp.mean(
            jax.nn.logsumexp(x, axis=-1) ** 2)

    for a, b in zip(jax.jit(jax.grad(fast, (0, 1)))(h, w),
                    jax.jit(jax.grad(naive, (0, 1)))(h, w), strict=True):
        assert_close(a, b, 1e-11, 1e-14)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.usefixtures("x64")
def test_gradient_of_one_input_only(reduction):
    """Differentiating w.r.t. hidden or weight alone skips the other's product."""
    h, w, y = make((12,), 6, 30, jnp.float64)

    def f(h, w):
        return scalarise(lce(h, w, y, chunk_size=5, reduction=reduction), reduction)

    gh, gw = jax.jit(jax.grad(f, (0, 1)))(h, w)
    assert_close(jax.jit(jax.grad(f, 0))(h, w), gh, 1e-14)
    assert_close(jax.jit(jax.grad(f, 1))(h, w), gw, 1e-14)


def test_out_of_range_label_gives_nan_for_that_token_only():
    h, w, y = make((6,), 4, 10, jnp.float32)
    y = y.at[2].set(10).at[4].set(-1)
    per_token = jax.jit(lambda h, w: lce(h, w, y, reduction="none", chunk_size=4))(h, w)
    assert np.isnan(per_token[2]) and np.isnan(per_token[4])
    assert np.all(np.isfinite(np.delete(np.asarray(per_token), [2, 4])))
    assert np.isnan(jax.jit(lce)(h, w, y))
    # As with jnp.where in the materialised loss, the NaN token passes no gradient.
    gh, gw = jax.jit(jax.grad(lambda h, w: lce(h, w, y, reduction="sum", chunk_size=4),
                              (0, 1)))(h, w)
    nh, nw = jax.jit(jax.grad(lambda h, w: materialised(h, w, y, reduction="sum"),
                              (0, 1)))(h, w)
    assert_close(gh, nh, 1e-5, 1e-7)
    assert_close(gw, nw, 1e-5, 1e-7)
    assert np.all(gh[2] == 0)
    # An ignored out-of-range label is just ignored.
    ignored = jax.jit(lambda h, w, y: lce(h, w, y, ignore_index=-1))(h, w, y.at[2].set(-1))
    assert np.isfinite(ignored)


def test_all_masked_mean_is_zero_with_zero_gradients():
    h, w, y = make((5,), 4, 9, jnp.float32)
    value, (gh, gw) = jax.jit(jax.value_and_grad(
        lambda h, w: lce(h, w, y, where=jnp.zeros(5, bool)), (0, 1)))(h, w)
    assert value == 0.0
    assert not np.any(gh) and not np.any(gw)


def test_extreme_logits_stay_finite():
    h, w, y = make((8,), 4, 16, jnp.float32)
    w = w * 1e4 / jnp.max(jnp.abs(h @ w))  # logits up to ±1e4
    value, (gh, gw) = jax.jit(jax.value_and_grad(lambda h, w: lce(h, w, y, z_loss=1e-4),
                                                 (0, 1)))(h, w)
    assert np.isfinite(value) and np.all(np.isfinite(gh)) and np.all(np.isfinite(gw))
    assert_close(value, jax.jit(lambda h, w: materialised(h, w, y, z_loss=1e-4))(h, w), 1e-5)


@pytest.mark.usefixtures("x64")
def test_bfloat16_accumulates_in_float32():
    h, w, y = make((40,), 32, 300, jnp.bfloat16, scale=2.0)
    value, (gh, gw) = jax.jit(jax.value_and_grad(lambda h, w: lce(h, w, y, chunk_size=16),
                                                 (0, 1)))(h, w)
    assert value.dtype == jnp.float32 and gh.dtype == gw.dtype == jnp.bfloat16
    # The reference sees the same bf16-rounded inputs in float64; only the final cast of
    # the gradients to bf16 (8 bits of mantissa) separates them.
    ref_value, ref_dh, ref_dw, _ = np_reference(h, w, y)
    assert_close(value, ref_value, 1e-5)
    assert_close(gh, ref_dh, 1e-2, 1e-2 * np.abs(ref_dh).max())
    assert_close(gw, ref_dw, 1e-2, 1e-2 * np.abs(ref_dw).max())


def test_default_chunk_size_rule():
    assert default_chunk_size(4096, 32768) == 256
    assert default_chunk_size(16384, 131072) == 256
    assert default_chunk_size(100_000, 1000) == 2**23 // 1000
    assert default_chunk_size(10, 1000) == 10
    assert default_chunk_size(0, 1000) == 1


# ----- memory ---------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_compiled_temp_memory_far_below_materialised(reduction):
    n, d, v = 1024, 32, 4096
    h, w, y = make((n,), d, v, jnp.float32)

    def fast(h, w):
        return scalarise(lce(h, w, y, chunk_size=64, reduction=reduction), reduction)

    def naive(h, w):
        return scalarise(materialised(h, w, y, reduction=reduction), reduction)

    def temp(f):
        compiled = jax.jit(jax.value_and_grad(f, (0, 1))).lower(h, w).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    # each compiled once (every call of temp compiles anew)
    temp_naive, temp_fast = temp(naive), temp(fast)
    logits_bytes = n * v * 4
    assert temp_naive >= logits_bytes  # the naive version does hold [N, V]
    assert temp_fast < temp_naive / 4
    assert temp_fast < logits_bytes / 4


# ----- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"w": np.zeros((5, 7), np.float32)}, "last axis must equal"),
        ({"w": np.zeros((4,), np.float32)}, "2-D"),
        ({"y": np.zeros((6,), np.float32)}, "integer"),
        ({"y": np.zeros((5,), np.int32)}, "labels has shape"),
        ({"reduction": "avg"}, "reduction"),
        ({"z_loss": -0.1}, "z_loss"),
        ({"label_smoothing": 1.5}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"logit_softcap": 0.0}, "logit_softcap"),
        ({"logit_softcap": -1.0}, "logit_softcap"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 2.5}, "chunk_size"),
        ({"where": np.ones((6,), np.int32)}, "where"),
        ({"weights": np.ones((3,), np.float32)}, "weights"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    kw = dict(kwargs)
    h = np.zeros((6, 4), np.float32)
    w = kw.pop("w", np.zeros((4, 7), np.float32))
    y = kw.pop("y", np.zeros((6,), np.int32))
    with pytest.raises(ValueError, match=match):
        lce(h, w, y, **kw)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_nan_hidden_state_at_an_ignored_token_reaches_no_gradient(reduction):
    h, w, y = make((5,), 4, 9, jnp.float32)
    y = y.at[1].set(-100)
    h_bad = h.at[1].set(jnp.nan)

    def total(h, w):
        return jnp.sum(lce(h, w, y, ignore_index=-100, chunk_size=2, reduction=reduction))

    value_and_grad = jax.jit(jax.value_and_grad(total, (0, 1)))  # one compilation for both
    value, (gh, gw) = value_and_grad(h_bad, w)
    clean_value, (clean_gh, clean_gw) = value_and_grad(h, w)
    assert np.isfinite(value) and np.all(np.isfinite(gw)) and np.all(np.isfinite(gh))
    assert np.all(gh[1] == 0.0)
    np.testing.assert_allclose(value, clean_value, rtol=1e-6)
    np.testing.assert_allclose(gw, clean_gw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gh, clean_gh, rtol=1e-5, atol=1e-7)
