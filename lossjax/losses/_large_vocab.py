"""Cross-entropy of a linear layer's output over a large vocabulary, without the logits.

A language model's last layer and its loss, ``cross_entropy(hidden @ weight, labels)``,
spend most of their memory on the ``[N, V]`` logits and on their gradient. Here the
tokens are processed in blocks of ``B`` rows: each block's ``[B, V]`` logits are made,
used and dropped, so the peak is ``O(B·V + D·V)`` instead of ``O(N·V)``.

Two ``jax.custom_vjp`` rules share the per-block arithmetic:

* When the loss is reduced to a scalar (``reduction`` ``"mean"`` or ``"sum"``) and the
  log-sum-exp is not returned, the cotangent of every token's loss is known up to the
  one scalar cotangent of the result. The forward rule therefore forms each block's
  softmax gradient while its logits are at hand and accumulates ``dH`` and ``dW`` right
  there; the backward rule only scales them. Three matrix products in all, like the
  naive ``value_and_grad`` (which also makes three).
* Otherwise (``reduction="none"`` or ``return_lse=True``) the forward rule keeps only the
  per-token log-sum-exp and the backward rule recomputes each block's logits (four
  matrix products).

References:
  Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024),
  arXiv:2411.09009. Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM
  Training" (2024), arXiv:2410.10989.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from lossjax._numerics import DIVERGENCES, distillation_divergence
from lossjax._validation import concrete_value
from lossjax.losses._inputs import (
    broadcast_mask,
    check_broadcastable_to,
    compute_dtype,
    keep_entries,
    label_validity,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["linear_cross_entropy", "linear_distillation_loss", "per_token_logprobs"]

# The automatic block holds about this many logits (32 MiB in float32) ...
_BLOCK_ELEMENTS = 2**23
# ... but at least this many tokens: every block adds a read-modify-write of the [D, V]
# weight gradient, which 6·B·D·V flops per block must amortise.
_MIN_BLOCK_TOKENS = 256


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Wanted:
    """Which input gradients a backward rule must form, and their dtypes (static)."""

    hidden: bool
    weight: bool
    hidden_dtype: np.dtype
    weight_dtype: np.dtype


class _Config(NamedTuple):
    """Static (hashable) options of one call; a ``nondiff_argnums`` of the custom VJPs."""

    block: int
    z_loss: float
    label_smoothing: float
    logit_softcap: float | None
    reduction: str


def default_chunk_size(num_tokens: int, vocab_size: int) -> int:
    """Tokens per block when ``chunk_size`` is not given.

    ``max(256, 2**23 // V)`` tokens (a block of logits of about 32 MiB in float32, but
    never fewer than 256 tokens so the per-block update of ``dW`` stays cheap next to the
    block's matrix products), and no more than the number of tokens.
    """
    return max(1, min(num_tokens, max(_MIN_BLOCK_TOKENS, _BLOCK_ELEMENTS // max(vocab_size, 1))))


def _block_logits(h: Array, weight: Array, cfg: _Config, dtype: np.dtype) -> Array:
    """``[B, D] @ [D, V]`` accumulated in ``dtype``, soft-capped as ``c·tanh(s / c)``."""
    logits = jnp.matmul(h, weight, preferred_element_type=dtype)
    if cfg.logit_softcap is not None:
        logits = cfg.logit_softcap * jnp.tanh(logits / cfg.logit_softcap)
    return logits


def _label_mask(labels: Array, vocab_size: int) -> Array:
    # A comparison against an iota (not a gather) partitions cleanly when the vocabulary
    # axis is sharded across devices.
    columns = jax.lax.broadcasted_iota(labels.dtype, (labels.shape[0], vocab_size), 1)
    return columns == labels[:, None]


def _block_loss(logits: Array, labels: Array, cfg: _Config) -> tuple[Array, Array]:
    """Per-token ``(loss, lse)`` of one block of logits ``x`` ``[B, V]``.

    ``loss = (1 − ε)(lse − x_y) + ε(lse − mean_k x_k) + z·lse²``.
    """
    lse = jax.nn.logsumexp(logits, axis=-1)
    label_logit = jnp.sum(jnp.where(_label_mask(labels, logits.shape[1]), logits, 0.0), axis=-1)
    eps = cfg.label_smoothing
    loss = lse - (1.0 - eps) * label_logit
    if eps:
        loss = loss - eps * jnp.mean(logits, axis=-1)
    if cfg.z_loss:
        loss = loss + cfg.z_loss * jnp.square(lse)
    return loss, lse


def _block_dlogits(
    logits: Array, lse: Array, labels: Array, g_loss: Array | None, g_lse: Array | None,
    cfg: _Config,
) -> Array:
    """Gradient w.r.t. the block's pre-softcap logits ``s`` given per-token cotangents.

    With ``p = softmax(x)``:
    ``∂loss/∂x_k = (1 + 2z·lse)·p_k − (1 − ε)·[k = y] − ε/V`` and ``∂lse/∂x_k = p_k``;
    the soft cap multiplies by ``∂x/∂s = 1 − (x/c)²``. ``None`` cotangents are zero.
    """
    vocab = logits.shape[1]
    probs = jnp.exp(logits - lse[:, None])
    scale = jnp.zeros_like(lse)
    grad = jnp.zeros((), logits.dtype)
    if g_loss is not None:
        scale = scale + g_loss * (1.0 + 2.0 * cfg.z_loss * lse)
        eps = cfg.label_smoothing
        grad = -jnp.where(_label_mask(labels, vocab), ((1.0 - eps) * g_loss)[:, None], 0.0)
        if eps:
            grad = grad - (eps / vocab) * g_loss[:, None]
    if g_lse is not None:
        scale = scale + g_lse
    grad = scale[:, None] * probs + grad
    if cfg.logit_softcap is not None:
        grad = grad * (1.0 - jnp.square(logits / cfg.logit_softcap))
    return grad


def _input_grads(
    h: Array, weight: Array, dlogits: Array, want_h: bool, want_w: bool, dtype: np.dtype
) -> tuple[Array | None, Array | None]:
    """``(dlogits @ Wᵀ, hᵀ @ dlogits)`` accumulated in ``dtype``; skipped when not wanted.

    Each product is laid out like the input it is the gradient of: with explicitly sharded
    meshes the contraction over a sharded vocabulary (or token) axis needs to be told.
    """
    d = dlogits.astype(weight.dtype)
    dh = dw = None
    if want_h:
        dh = jax.lax.dot_general(d, weight, (((1,), (1,)), ((), ())),
                                 preferred_element_type=dtype,
                                 out_sharding=jax.typeof(h).sharding)
    if want_w:
        dw = jax.lax.dot_general(h, d, (((0,), (0,)), ((), ())), preferred_element_type=dtype,
                                 out_sharding=jax.typeof(weight).sharding)
    return dh, dw


def _split_blocks(block: int, *arrays: Array) -> tuple[Array, ...]:
    """Fold the leading (token) axis ``[N, ...]`` into ``[N / block, block, ...]`` blocks.

    Block ``j`` holds tokens ``j, j + nb, j + 2·nb, ...`` (``nb`` blocks): every token is
    independent, and this strided grouping keeps a token-sharded (data-parallel) input
    local to its device, where contiguous blocks would have to move tokens across
    devices. ``N`` is first padded to a multiple of ``block``; padded tokens have zero
    hidden state, label 0 and zero cotangent, so they add nothing to ``dW``, and
    :func:`_join_blocks` cuts their outputs off.
    """
    n = arrays[0].shape[0]
    pad = -n % block
    out = []
    for a in arrays:
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) if pad else a
        out.append(jnp.swapaxes(a.reshape((block, a.shape[0] // block) + a.shape[1:]), 0, 1))
    return tuple(out)


def _join_blocks(n: int, *arrays: Array) -> tuple[Array, ...]:
    """Undo :func:`_split_blocks`: ``[nb, block, ...]`` back to the first ``n`` tokens."""
    return tuple(jnp.swapaxes(a, 0, 1).reshape((-1,) + a.shape[2:])[:n] for a in arrays)


def _token_losses(cfg: _Config, hidden: Array, weight: Array, labels: Array) -> tuple[Array, Array]:
    """Per-token ``(loss, lse)``, ``[N]`` each, one block of logits at a time."""
    dtype = compute_dtype(hidden.dtype, weight.dtype)

    def body(_, xs):
        h, y = xs
        return None, _block_loss(_block_logits(h, weight, cfg, dtype), y, cfg)

    _, (loss, lse) = jax.lax.scan(body, None, _split_blocks(cfg.block, hidden, labels))
    loss, lse = _join_blocks(hidden.shape[0], loss, lse)
    return loss, lse


def _backward_pass(
    cfg: _Config, hidden: Array, weight: Array, labels: Array, lse: Array | None,
    g_loss: Array | None, g_lse: Array | None, want_h: bool, want_w: bool,
) -> tuple[Array, Array, Array | None, Array | None]:
    """One sweep over token blocks: per-token ``(loss, lse)`` and the input gradients.

    ``lse`` given: it is reused (recomputing logits in a backward rule); otherwise it
    is computed from the block's logits (the fused forward rule). ``dW`` accumulates in
    the loop carry, ``dH`` comes out block by block; both in the compute dtype.
    """
    dtype = compute_dtype(hidden.dtype, weight.dtype)
    n = hidden.shape[0]
    zeros = jnp.zeros((n,), dtype)
    per_token = (
        labels,
        zeros if lse is None else lse,
        zeros if g_loss is None else g_loss,
        zeros if g_lse is None else g_lse,
    )

    def body(dw_acc, xs):
        h, y, lse_b, gl, gz = xs
        logits = _block_logits(h, weight, cfg, dtype)
        loss_b, fresh_lse = _block_loss(logits, y, cfg)
        lse_b = fresh_lse if lse is None else lse_b
        dlogits = _block_dlogits(logits, lse_b, y, None if g_loss is None else gl,
                                 None if g_lse is None else gz, cfg)
        dh, dw = _input_grads(h, weight, dlogits, want_h, want_w, dtype)
        if want_w:
            dw_acc = dw_acc + dw
        return dw_acc, (loss_b, lse_b) + ((dh,) if want_h else ())

    dw0 = jnp.zeros_like(weight, dtype) if want_w else None
    dw, outs = jax.lax.scan(body, dw0, _split_blocks(cfg.block, hidden, *per_token))
    outs = _join_blocks(n, *cast(tuple[Array, ...], outs))
    return outs[0], outs[1], (outs[2] if want_h else None), dw


# ----- per-token outputs: keep lse, recompute logits in the backward rule ---------------

@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _per_token(cfg: _Config, hidden: Array, weight: Array, labels: Array) -> tuple[Array, Array]:
    return _token_losses(cfg, hidden, weight, labels)


def _per_token_fwd(cfg, hidden, weight, labels):
    loss, lse = _token_losses(cfg, hidden.value, weight.value, labels.value)
    wanted = _Wanted(hidden.perturbed, weight.perturbed, hidden.value.dtype,
                     weight.value.dtype)
    return (loss, lse), (hidden.value, weight.value, labels.value, lse, wanted)


def _per_token_bwd(cfg, residuals, cotangents):
    hidden, weight, labels, lse, wanted = residuals
    g_loss, g_lse = (None if isinstance(g, SymbolicZero) else g for g in cotangents)
    if g_loss is None and g_lse is None:
        return None, None, None
    _, _, dh, dw = _backward_pass(cfg, hidden, weight, labels, lse, g_loss, g_lse,
                                  wanted.hidden, wanted.weight)
    return (None if dh is None else dh.astype(hidden.dtype),
            None if dw is None else dw.astype(weight.dtype), None)


_per_token.defvjp(_per_token_fwd, _per_token_bwd, symbolic_zeros=True)


# ----- scalar output: gradients formed in the forward rule -----------------------------

def _reduce(cfg: _Config, loss: Array, invalid: Array, weights: Array | None,
            mask: Array) -> Array:
    loss = jnp.where(invalid, jnp.nan, loss)
    return reduce_loss(loss, weights=weights, where=mask, reduction=cfg.reduction)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _reduced(cfg: _Config, hidden: Array, weight: Array, labels: Array, invalid: Array,
             weights: Array | None, mask: Array) -> Array:
    loss, _ = _token_losses(cfg, hidden, weight, labels)
    return _reduce(cfg, loss, invalid, weights, mask)


def _reduced_fwd(cfg, hidden, weight, labels, invalid, weights, mask):
    hidden_p, weight_p = hidden, weight
    hidden, weight, labels, invalid, mask = (
        x.value for x in (hidden, weight, labels, invalid, mask))
    weights_p, weights = weights, (None if weights is None else weights.value)
    dtype = compute_dtype(hidden.dtype, weight.dtype)
    # The reduction is linear in the per-token losses, so their cotangents (the
    # coefficients of the scalar result) are known before any loss is computed.
    coef = jax.grad(lambda v: _reduce(cfg, v, jnp.zeros_like(invalid), weights, mask))(
        jnp.zeros(labels.shape, dtype))
    # Out-of-range labels make the value NaN but, as with jnp.where, pass no gradient.
    coef = jnp.where(invalid, 0.0, coef)
    loss, _, dh, dw = _backward_pass(cfg, hidden, weight, labels, None, coef, None,
                                     hidden_p.perturbed, weight_p.perturbed)
    if weights is not None and weights_p.perturbed:
        value, vjp = jax.vjp(lambda w: _reduce(cfg, loss, invalid, w, mask), weights)
        (dweights,) = vjp(jnp.ones((), value.dtype))
    else:
        value, dweights = _reduce(cfg, loss, invalid, weights, mask), None
    wanted = _Wanted(hidden_p.perturbed, weight_p.perturbed, hidden.dtype, weight.dtype)
    return value, (dh, dw, dweights, wanted)


def _reduced_bwd(cfg, residuals, g):
    dh, dw, dweights, wanted = residuals
    if isinstance(g, SymbolicZero):
        return None, None, None, None, None, None

    def scale(d, dt):
        return None if d is None else (g * d).astype(dt)

    return (scale(dh, wanted.hidden_dtype), scale(dw, wanted.weight_dtype), None, None,
            scale(dweights, None if dweights is None else dweights.dtype), None)


_reduced.defvjp(_reduced_fwd, _reduced_bwd, symbolic_zeros=True)


# ----- public function ------------------------------------------------------------------

def _static_float(name: str, value: float | None, *, low: float, high: float | None = None,
                  low_inclusive: bool = True, allow_none: bool = False) -> float | None:
    """A concrete Python float within bounds (it is a static option of the custom VJP)."""
    if value is None and allow_none:
        return None
    v = concrete_value(value)
    if v is None:
        raise ValueError(f"{name} must be a concrete number (not traced), got {value!r}")
    ok = (v >= low if low_inclusive else v > low) and (high is None or v <= high)
    if not ok or math.isnan(v):
        bound = f"{'[' if low_inclusive else '('}{low}, {high if high is not None else 'inf'}"
        bound += "]" if high is not None else ")"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return v


def _check_shapes(hidden: Array, weight: Array, labels: Array) -> None:
    if weight.ndim != 2:
        raise ValueError(f"weight must be [D, V] (2-D), got shape {tuple(weight.shape)}")
    if hidden.ndim < 1 or hidden.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"hidden has shape {tuple(hidden.shape)} and weight has shape "
            f"{tuple(weight.shape)}; hidden's last axis must equal weight's first axis (D)"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if tuple(labels.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)} but hidden has shape "
            f"{tuple(hidden.shape)}; labels must have hidden's shape without the last axis "
            f"{tuple(hidden.shape[:-1])}"
        )
    for name, a in (("hidden", hidden), ("weight", weight)):
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise ValueError(f"{name} must be a floating-point array, got dtype {a.dtype}")


def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    z_loss: float = 0.0,
    label_smoothing: float = 0.0,
    logit_softcap: float | None = None,
    chunk_size: int | None = None,
    reduction: str = "mean",
    return_lse: bool = False,
    weights: ArrayLike | None = None,
) -> Array | tuple[Array, Array]:
    """Softmax cross-entropy of ``hidden @ weight`` that never holds the ``[N, V]`` logits.

    Same value and gradients (w.r.t. ``hidden``, ``weight`` and ``weights``) as
    ``softmax_cross_entropy_with_integer_labels(softcap(hidden @ weight), labels, ...)``.
    Per token, with logits ``x = c·tanh((h·W)/c)`` (or ``h·W`` without ``logit_softcap``),
    ``lse = logsumexp(x)``, ``V`` classes and smoothing ``ε``::

        loss = (1 − ε)·(lse − x_y) + ε·(lse − mean_k x_k) + z_loss·lse²

    that is PyTorch's ``cross_entropy`` with label smoothing, plus PaLM's z-loss, after
    Gemma 2's logit soft-capping.

    Memory: tokens are processed ``chunk_size`` at a time, so the peak extra memory is a
    few ``[chunk_size, V]`` blocks plus the ``[D, V]`` gradient of ``weight``, never
    ``[N, V]``. Default ``chunk_size``: ``max(256, 2**23 // V)`` tokens (about 32 MiB of
    float32 logits per block), capped at ``N``. A ``chunk_size`` that does not divide
    ``N`` is fine (the last block is padded).

    Precision: the matrix products accumulate in float32 (float64 for float64 inputs),
    bfloat16/float16 inputs included, and so does the softmax; the gradients are
    returned in the inputs' dtypes.

    Sharding: works under ``jax.jit`` with ``weight`` sharded along the vocabulary (a
    ``NamedSharding`` on its second axis); XLA then computes the log-sum-exp across
    devices and keeps ``dW`` sharded like ``weight``.

    Args:
      hidden: ``[..., D]`` final hidden states.
      weight: ``[D, V]`` output projection (unembedding) matrix.
      labels: integer ``[...]`` (``hidden``'s shape without the last axis). A label outside
        ``[0, V)`` that is not ``ignore_index`` gives NaN for that token (jit cannot raise).
      ignore_index: labels equal to it behave as ``where=False``.
      where: optional boolean mask broadcastable to ``labels.shape``.
      z_loss: coefficient of ``lse²``, >= 0.
      label_smoothing: ``ε`` in ``[0, 1]``.
      logit_softcap: ``c > 0`` or None (no cap).
      chunk_size: tokens per block, > 0; None picks it as above.
      reduction: ``"mean"`` (over tokens kept by ``where`` and ``ignore_index``), ``"sum"``
        or ``"none"`` (per-token losses ``[...]``, 0 where masked).
      return_lse: also return the per-token ``lse`` ``[...]`` (e.g. to log or penalise it).
      weights: optional per-token weights broadcastable to ``labels.shape``.

    Returns:
      The loss (scalar, or ``[...]`` for ``"none"``), float32 at least; with
      ``return_lse``, the pair ``(loss, lse)``.

    References:
      Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024).
      Chowdhery et al., "PaLM" (2022) for the z-loss. Gemma Team, "Gemma 2" (2024) for
      logit soft-capping.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.linear_cross_entropy(
      ...     jnp.array([[1.0, 0.0]]),
      ...     jnp.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
      ...     jnp.array([0]))
      Array(0.4076, dtype=float32)
    """
    check_reduction(reduction)
    cfg_z = cast(float, _static_float("z_loss", z_loss, low=0.0))
    cfg_eps = cast(float, _static_float("label_smoothing", label_smoothing, low=0.0, high=1.0))
    cfg_cap = _static_float("logit_softcap", logit_softcap, low=0.0, low_inclusive=False,
                            allow_none=True)
    if chunk_size is not None and (
        not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool)
        or chunk_size <= 0
    ):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    hidden, weight, labels = (real_array(name, a) for name, a in (
        ("hidden", hidden), ("weight", weight), ("labels", labels)))
    _check_shapes(hidden, weight, labels)

    batch_shape = tuple(labels.shape)
    n, vocab = math.prod(batch_shape), weight.shape[1]
    cfg = _Config(
        block=int(chunk_size) if chunk_size is not None else default_chunk_size(n, vocab),
        z_loss=cfg_z, label_smoothing=cfg_eps, logit_softcap=cfg_cap, reduction=reduction,
    )
    h = hidden.reshape(n, hidden.shape[-1])
    safe, kept, invalid = label_validity(labels.reshape(n), vocab, ignore_index)
    mask = kept if where is None else kept & broadcast_mask(where, batch_shape).reshape(n)
    # Masked tokens' hidden states become 0 before any product: a NaN there would otherwise
    # reach every column of dW through hᵀ·dlogits.
    (h,) = keep_entries(mask, h, feature_axes=(-1,))
    if weights is not None:
        weights = jnp.asarray(weights)
        check_broadcastable_to("weights", weights.shape, batch_shape)
        weights = jnp.broadcast_to(weights, batch_shape).reshape(n)

    if reduction != "none" and not return_lse:
        return _reduced(cfg, h, weight, safe, invalid, weights, mask)
    loss, lse = cast(tuple[Array, Array], _per_token(cfg, h, weight, safe))
    out = _reduce(cfg, loss, invalid, weights, mask)
    if reduction == "none":
        out = out.reshape(batch_shape)
    return (out, lse.reshape(batch_shape)) if return_lse else out


# ----- token log-probabilities ------------------------------------------------------------

def per_token_logprobs(
    hidden: ArrayLike,
    weight: ArrayLike,
    tokens: ArrayLike,
    *,
    temperature: float = 1.0,
    chunk_size: int | None = None,
) -> Array:
    """``log softmax((hidden @ weight) / T)[token]`` per token, without the ``[N, V]`` logits.

    The log-probability a language model gives each sampled token, as policy-gradient
    losses (:func:`grpo_loss`) need it, computed block by block like
    :func:`linear_cross_entropy` (it is minus that loss with ``reduction="none"``), so
    a vocabulary of any size fits: forward and backward hold a few ``[chunk_size, V]``
    blocks, never ``[N, V]``. ``T`` divides the logits (TRL samples and scores with the
    same temperature).

    Reference: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (2024).

    Args:
      hidden: ``[..., D]`` final hidden states.
      weight: ``[D, V]`` output projection.
      tokens: integer ``[...]``; a token outside ``[0, V)`` gives NaN (jit cannot raise).
      temperature: ``T > 0``.
      chunk_size: tokens per block (see :func:`linear_cross_entropy`).

    Returns:
      ``[...]`` log-probabilities, float32 at least.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.per_token_logprobs(jnp.array([[1.0, 0.0]]),
      ...                            jnp.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]]),
      ...                            jnp.array([0]))
      Array([-0.407606], dtype=float32)
    """
    t = _static_float("temperature", temperature, low=0.0, low_inclusive=False)
    hidden = real_array("hidden", hidden)
    if t != 1.0:
        hidden = hidden / jnp.asarray(t, hidden.dtype)
    return -cast(Array, linear_cross_entropy(hidden, weight, tokens, chunk_size=chunk_size,
                                             reduction="none"))


# ----- blocked distillation ---------------------------------------------------------------

class _DistillConfig(NamedTuple):
    """Static options of :func:`linear_distillation_loss` (``nondiff_argnums`` of its VJP)."""

    block: int
    temperature: float
    divergence: str
    beta: float


def _block_divergence(cfg: _DistillConfig, h_s: Array, w_s: Array, log_teacher: Array,
                      dtype: np.dtype) -> Array:
    """``T²·D(student ‖ teacher)`` per token of one block, the student from ``h_s @ w_s``."""
    logits = jnp.matmul(h_s, w_s, preferred_element_type=dtype)
    log_student = jax.nn.log_softmax(logits / cfg.temperature, axis=-1)
    return cfg.temperature**2 * distillation_divergence(log_student, log_teacher,
                                                        cfg.divergence, cfg.beta)


def _block_teacher(cfg: _DistillConfig, h_t: Array, w_t: Array, dtype: np.dtype) -> Array:
    logits = jnp.matmul(h_t, w_t, preferred_element_type=dtype)
    return jax.nn.log_softmax(logits / cfg.temperature, axis=-1)


def _distill_tokens(cfg: _DistillConfig, h_s: Array, w_s: Array, h_t: Array,
                    w_t: Array) -> Array:
    dtype = compute_dtype(h_s.dtype, w_s.dtype, h_t.dtype, w_t.dtype)

    def body(_, xs):
        hs, ht = xs
        return None, _block_divergence(cfg, hs, w_s, _block_teacher(cfg, ht, w_t, dtype), dtype)

    _, loss = jax.lax.scan(body, None, _split_blocks(cfg.block, h_s, h_t))
    (loss,) = _join_blocks(h_s.shape[0], loss)
    return loss


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _distill(cfg: _DistillConfig, h_s: Array, w_s: Array, h_t: Array, w_t: Array) -> Array:
    return _distill_tokens(cfg, h_s, w_s, h_t, w_t)


def _distill_fwd(cfg, h_s, w_s, h_t, w_t):
    return _distill_tokens(cfg, h_s, w_s, h_t, w_t), (h_s, w_s, h_t, w_t)


def _distill_bwd(cfg, residuals, g):
    """Recompute each block's logits and differentiate the block alone: ``dH`` block by
    block, ``dW`` summed in the loop carry; the teacher is held constant."""
    h_s, w_s, h_t, w_t = residuals
    dtype = compute_dtype(h_s.dtype, w_s.dtype, h_t.dtype, w_t.dtype)

    def body(dw_acc, xs):
        hs, ht, gb = xs
        log_teacher = _block_teacher(cfg, ht, w_t, dtype)
        _, vjp = jax.vjp(lambda h, w: _block_divergence(cfg, h, w, log_teacher, dtype),
                         hs.astype(dtype), w_s.astype(dtype))
        dh, dw = vjp(gb)
        return dw_acc + dw, dh

    dw, dh = jax.lax.scan(body, jnp.zeros(w_s.shape, dtype),
                          _split_blocks(cfg.block, h_s, h_t, g.astype(dtype)))
    (dh,) = _join_blocks(h_s.shape[0], dh)
    return dh.astype(h_s.dtype), dw.astype(w_s.dtype), None, None


_distill.defvjp(_distill_fwd, _distill_bwd)


def _distill_reduce(cfg: _DistillConfig, loss: Array, weights: Array | None, mask: Array,
                    reduction: str) -> Array:
    return reduce_loss(loss, weights=weights, where=mask, reduction=reduction)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 7))
def _distill_reduced(cfg: _DistillConfig, h_s: Array, w_s: Array, h_t: Array, w_t: Array,
                     weights: Array | None, mask: Array, reduction: str) -> Array:
    return _distill_reduce(cfg, _distill_tokens(cfg, h_s, w_s, h_t, w_t), weights, mask,
                           reduction)


def _distill_reduced_fwd(cfg, h_s, w_s, h_t, w_t, weights, mask, reduction):
    """One sweep: each block's loss and, with the known coefficient of that loss in the
    scalar result, its gradient, while the block's logits are at hand (no recomputation)."""
    dtype = compute_dtype(h_s.dtype, w_s.dtype, h_t.dtype, w_t.dtype)
    coef = jax.grad(lambda v: _distill_reduce(cfg, v, weights, mask, reduction))(
        jnp.zeros((h_s.shape[0],), dtype))

    def body(dw_acc, xs):
        hs, ht, cb = xs
        log_teacher = _block_teacher(cfg, ht, w_t, dtype)
        loss, vjp = jax.vjp(lambda h, w: _block_divergence(cfg, h, w, log_teacher, dtype),
                            hs.astype(dtype), w_s.astype(dtype))
        dh, dw = vjp(cb)
        return dw_acc + dw, (loss, dh)

    dw, (loss, dh) = jax.lax.scan(body, jnp.zeros(w_s.shape, dtype),
                                  _split_blocks(cfg.block, h_s, h_t, coef))
    loss, dh = _join_blocks(h_s.shape[0], loss, dh)
    if weights is None:
        value, dweights = _distill_reduce(cfg, loss, None, mask, reduction), None
    else:
        value, vjp = jax.vjp(lambda w: _distill_reduce(cfg, loss, w, mask, reduction), weights)
        (dweights,) = vjp(jnp.ones((), value.dtype))
    return value, (dh.astype(h_s.dtype), dw.astype(w_s.dtype), dweights)


def _distill_reduced_bwd(cfg, reduction, residuals, g):
    dh, dw, dweights = residuals
    return ((g * dh).astype(dh.dtype), (g * dw).astype(dw.dtype), None, None,
            None if dweights is None else g * dweights, None)


_distill_reduced.defvjp(_distill_reduced_fwd, _distill_reduced_bwd)


def linear_distillation_loss(
    student_hidden: ArrayLike,
    student_weight: ArrayLike,
    teacher_hidden: ArrayLike,
    teacher_weight: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    temperature: float = 1.0,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    ignore_index: int = -100,
    chunk_size: int | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """:func:`distillation_loss` of ``student_hidden @ student_weight`` against
    ``teacher_hidden @ teacher_weight`` that never builds either ``[N, V]`` logit matrix.

    Per token, with student ``p = softmax(h_s·W_s / T)`` and teacher
    ``q = softmax(h_t·W_t / T)``, the loss is ``T²·D(p, q)`` for the ``divergence`` of
    :func:`distillation_loss` (``"forward_kl"`` ``KL(q ‖ p)``, ``"reverse_kl"``
    ``KL(p ‖ q)``, or ``"jsd"`` with ``beta``); the same value and gradients as
    ``distillation_loss(h_s @ W_s, h_t @ W_t, ...)``.

    Memory: tokens are processed ``chunk_size`` at a time, forward and backward (a
    ``jax.custom_vjp``), so the peak extra memory is a few ``[chunk_size, V]`` blocks plus
    the ``[D, V]`` gradient of ``student_weight``. For a scalar loss (``"mean"``,
    ``"sum"``) the gradient is formed in the same sweep as the value, while each block's
    logits are at hand; for ``"none"`` the backward recomputes each block's logits. The
    teacher is held constant: ``teacher_hidden`` and ``teacher_weight`` get zero gradients.
    Default ``chunk_size`` as in :func:`linear_cross_entropy`.

    References: Hinton, Vinyals and Dean (2015); Agarwal et al., "On-Policy Distillation of
    Language Models" (GKD, 2024); Wijmans et al., "Cut Your Losses in Large-Vocabulary
    Language Models" (2024) for the blocking.

    Args:
      student_hidden: ``[..., D_s]`` the student's final hidden states.
      student_weight: ``[D_s, V]`` the student's output projection.
      teacher_hidden: ``[..., D_t]`` the teacher's, same leading shape.
      teacher_weight: ``[D_t, V]`` the teacher's.
      labels: optional integer ``[...]``; tokens whose label is ``ignore_index`` are dropped.
      temperature: ``T > 0`` (static: a Python number).
      divergence: ``"forward_kl"``, ``"reverse_kl"`` or ``"jsd"``.
      beta: the JSD's ``β`` in ``(0, 1)`` (static).
      ignore_index: the label that drops a token.
      chunk_size: tokens per block, > 0; None picks it.
      weights: optional per-token weights broadcastable to ``[...]``.
      where: optional boolean token mask broadcastable to ``[...]``.

    Returns:
      The loss (scalar, or ``[...]`` for ``"none"``), float32 at least.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> w = jnp.array([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> lossjax.linear_distillation_loss(jnp.array([[1.0, 0.0]]), w,
      ...                                  jnp.array([[0.0, 1.0]]), w)
      Array(0.796454, dtype=float32)
    """
    check_reduction(reduction)
    t = cast(float, _static_float("temperature", temperature, low=0.0, low_inclusive=False))
    if not isinstance(divergence, str) or divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(map(repr, DIVERGENCES))}; "
                         f"got {divergence!r}")
    b = cast(float, _static_float("beta", beta, low=0.0, high=1.0))
    if divergence == "jsd" and not 0.0 < b < 1.0:
        raise ValueError(f"beta must be in (0, 1) for divergence='jsd', got {beta!r}")
    if chunk_size is not None and (
        not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool)
        or chunk_size <= 0
    ):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    h_s, w_s, h_t, w_t = (real_array(name, a) for name, a in (
        ("student_hidden", student_hidden), ("student_weight", student_weight),
        ("teacher_hidden", teacher_hidden), ("teacher_weight", teacher_weight)))
    _check_distill_shapes(h_s, w_s, h_t, w_t)
    batch_shape = tuple(h_s.shape[:-1])
    n, vocab = math.prod(batch_shape), w_s.shape[1]
    mask = jnp.ones((n,), bool) if where is None else broadcast_mask(where, batch_shape).reshape(n)
    if labels is not None:
        labels = real_array("labels", labels)
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise ValueError(f"labels must be integer token ids, got dtype {labels.dtype}")
        if tuple(labels.shape) != batch_shape:
            raise ValueError(f"labels has shape {tuple(labels.shape)} but student_hidden has "
                             f"shape {tuple(h_s.shape)}; labels must have shape {batch_shape}")
        mask = mask & (labels.reshape(n) != ignore_index)
    cfg = _DistillConfig(
        block=int(chunk_size) if chunk_size is not None else default_chunk_size(n, vocab),
        temperature=t, divergence=divergence, beta=b)
    # Dropped tokens' hidden states become 0 before any product, so a NaN there reaches
    # neither the loss nor dW.
    h_s, h_t = keep_entries(mask, h_s.reshape(n, -1), h_t.reshape(n, -1), feature_axes=(-1,))
    h_t, w_t = jax.lax.stop_gradient(h_t), jax.lax.stop_gradient(w_t)
    if weights is not None:
        weights = jnp.asarray(weights)
        check_broadcastable_to("weights", weights.shape, batch_shape)
        weights = jnp.broadcast_to(weights, batch_shape).reshape(n)
    if reduction != "none":
        return cast(Array, _distill_reduced(cfg, h_s, w_s, h_t, w_t, weights, mask, reduction))
    loss = cast(Array, _distill(cfg, h_s, w_s, h_t, w_t))
    out = reduce_loss(loss, weights=weights, where=mask, reduction=reduction)
    return out.reshape(batch_shape)


def _check_distill_shapes(h_s: Array, w_s: Array, h_t: Array, w_t: Array) -> None:
    for side, h, w in (("student", h_s, w_s), ("teacher", h_t, w_t)):
        if w.ndim != 2:
            raise ValueError(f"{side}_weight must be [D, V] (2-D), got shape {tuple(w.shape)}")
        if h.ndim < 1 or h.shape[-1] != w.shape[0]:
            raise ValueError(
                f"{side}_hidden has shape {tuple(h.shape)} and {side}_weight has shape "
                f"{tuple(w.shape)}; the hidden's last axis must equal the weight's first (D)")
        for name, a in ((f"{side}_hidden", h), (f"{side}_weight", w)):
            if not jnp.issubdtype(a.dtype, jnp.floating):
                raise ValueError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    if w_s.shape[1] != w_t.shape[1]:
        raise ValueError(f"student_weight has shape {tuple(w_s.shape)} and teacher_weight has "
                         f"shape {tuple(w_t.shape)}; both must have the same vocabulary (V)")
    if tuple(h_s.shape[:-1]) != tuple(h_t.shape[:-1]):
        raise ValueError(f"student_hidden has shape {tuple(h_s.shape)} but teacher_hidden has "
                         f"shape {tuple(h_t.shape)}; their leading (token) shapes must match")
