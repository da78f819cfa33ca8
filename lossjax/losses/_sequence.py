"""Sequence losses: connectionist temporal classification (CTC) and perplexity.

CTC's forward (alpha) and backward (beta) recursions run in log space, each a
``lax.scan`` over frames. The gradient with respect to the logits is the closed form
``softmax − state posteriors`` (a ``custom_vjp`` whose forward pass runs both scans), so no
autodiff residuals of the scans are stored and the backward pass is elementwise work and
one small matmul. A loss evaluated without a gradient runs the alpha scan only.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from lossjax._numerics import integer_label_cross_entropy
from lossjax.losses._inputs import compute_dtype, real_array, scores_and_labels
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["ctc_greedy_decode", "ctc_loss", "perplexity"]


# ----------------------------------------------------------------------------- checks


def _check_ctc_shapes(logits: Array, labels: Array, logit_lengths: Array,
                      label_lengths: Array, blank_id: int) -> None:
    """Ranks, batch sizes, dtypes and ``blank_id``: everything known at trace time."""
    if logits.ndim != 3:
        raise ValueError(f"logits must be [B, T, K], got shape {tuple(logits.shape)}")
    batch, _, num_classes = logits.shape
    if labels.ndim != 2 or labels.shape[0] != batch:
        raise ValueError(
            f"labels must be [B, L] with B={batch} (logits has shape {tuple(logits.shape)}), "
            f"got shape {tuple(labels.shape)}"
        )
    for name, value in (("labels", labels), ("logit_lengths", logit_lengths),
                        ("label_lengths", label_lengths)):
        if not jnp.issubdtype(value.dtype, jnp.integer):
            raise ValueError(f"{name} must have an integer dtype, got {value.dtype}")
    for name, value in (("logit_lengths", logit_lengths), ("label_lengths", label_lengths)):
        if tuple(value.shape) != (batch,):
            raise ValueError(
                f"{name} must have shape ({batch},), one length per sequence; "
                f"got {tuple(value.shape)}"
            )
    _check_blank_id(blank_id, num_classes)


def _check_blank_id(blank_id: int, num_classes: int) -> None:
    if not isinstance(blank_id, (int, np.integer)) or not 0 <= blank_id < num_classes:
        raise ValueError(
            f"blank_id must be an int in [0, {num_classes}) (K = logits.shape[-1]), "
            f"got {blank_id!r}"
        )


def _check_ctc_values(labels: ArrayLike, logit_lengths: Array, label_lengths: Array,
                      max_time: int, num_classes: int, blank_id: int) -> None:
    """Lengths in range and valid labels in ``[0, K)`` other than blank.

    Runs only when all three arrays are concrete and fully addressable (an eager call on
    this host's data); under ``jit``, and for arrays sharded across hosts (which a host
    copy would fail on or gather), the same conditions are checked on device and make that
    sequence's loss NaN instead.
    """
    arrays = (labels, logit_lengths, label_lengths)
    if any(isinstance(a, jax.core.Tracer) for a in arrays):
        return
    if any(isinstance(a, jax.Array) and not a.is_fully_addressable for a in arrays):
        return
    labels = np.asarray(labels)
    max_label = labels.shape[1]
    for name, lengths, symbol, limit in (
        ("logit_lengths", np.asarray(logit_lengths), "T", max_time),
        ("label_lengths", np.asarray(label_lengths), "L", max_label),
    ):
        bad = np.flatnonzero((lengths < 0) | (lengths > limit))
        if bad.size:
            b = bad[0]
            raise ValueError(
                f"{name} must be in [0, {symbol}={limit}]; sequence {b} has {name}={lengths[b]}"
            )
    inside = np.arange(max_label)[None, :] < np.asarray(label_lengths)[:, None]
    for condition, what in (((labels < 0) | (labels >= num_classes), f"outside [0, {num_classes})"),
                            (labels == blank_id, f"equal to blank_id={blank_id}")):
        bad = np.argwhere(inside & condition)
        if bad.size:
            b, position = bad[0]
            raise ValueError(
                f"labels must not be {what} within label_lengths; labels[{b}, {position}] = "
                f"{labels[b, position]}"
            )


def _invalid_sequences(labels: Array, logit_lengths: Array, label_lengths: Array,
                       max_time: int, num_classes: int, blank_id: int) -> Array:
    """``[B]`` bool: the on-device version of :func:`_check_ctc_values` (used under jit)."""
    max_label = labels.shape[1]
    inside = jnp.arange(max_label)[None, :] < label_lengths[:, None]
    bad_label = inside & ((labels < 0) | (labels >= num_classes) | (labels == blank_id))
    return ((logit_lengths < 0) | (logit_lengths > max_time) | (label_lengths < 0)
            | (label_lengths > max_label) | jnp.any(bad_label, axis=1))


# ----------------------------------------------------------------------------- recursions
#
# States of the extended label (blank, y1, blank, y2, ..., yL, blank) are kept as two arrays:
# blanks [B, L+1] (blank i precedes label i) and labels [B, L]. Forward, a blank is entered
# from itself or the previous label (2 terms) and a label from itself, the preceding blank, or
# the previous label when the two differ (3 terms); backward, the mirror image. Splitting the
# states this way lets every blank use a 2-term log-sum-exp, and the largest term of each sum
# needs no exponential: 2.5 transcendental functions per state and frame instead of 4.
#
# Padded frames (t >= T_b) emit blank with log-probability 0 and labels with −inf: alpha then
# carries log p into the last blank unchanged, and beta stays at its end state until
# t = T_b − 1, so the scans need no per-step branching on lengths.


def _finite_floor(x: Array) -> Array:
    """``x`` with −inf replaced by the most negative finite value (so x − x is not NaN)."""
    return jnp.maximum(x, jnp.finfo(x.dtype).min)


def _log_add2(a: Array, b: Array) -> Array:
    """log(e^a + e^b) with one exp and one log1p; −inf when both are −inf."""
    hi, lo = jnp.maximum(a, b), jnp.minimum(a, b)
    return hi + jnp.log1p(jnp.exp(lo - _finite_floor(hi)))


def _log_add3(a: Array, b: Array, c: Array) -> Array:
    """log(e^a + e^b + e^c) with two exps and one log1p; −inf when all are −inf.

    A min/max network finds the largest term, whose exponential is 1 and need not be
    computed; log1p keeps the small terms that log(1 + x) would round away, which over
    hundreds of frames would cost float32 CTC several digits on near-certain labellings.
    """
    hi_ab, lo_ab = jnp.maximum(a, b), jnp.minimum(a, b)
    hi, mid = jnp.maximum(hi_ab, c), jnp.minimum(hi_ab, c)
    ref = _finite_floor(hi)
    return hi + jnp.log1p(jnp.exp(lo_ab - ref) + jnp.exp(mid - ref))


def _log_softmax(logits: Array) -> Array:
    """log softmax over the last axis, accurate when one class has nearly all the mass.

    ``x − m − log1p(Σ_{k ≠ argmax} e^{x_k − m})``: the usual ``log Σ e^{x_k − m}`` rounds
    1 + 1e-8 to 1, so a peaked frame's log-probability becomes exactly 0 and a long,
    confident sequence's CTC loss loses all its digits (or goes negative, optax #1771).
    """
    top = jnp.max(logits, axis=-1, keepdims=True)
    is_top = jnp.arange(logits.shape[-1]) == jnp.argmax(logits, axis=-1, keepdims=True)
    rest = jnp.sum(jnp.where(is_top, 0.0, jnp.exp(logits - top)), axis=-1, keepdims=True)
    return logits - top - jnp.log1p(rest)


def _into_forward(blanks: Array, labels: Array, skip: Array) -> tuple[Array, Array]:
    """Log-mass entering each state at frame t from frame t − 1 (alpha, before emission).

    ``blanks`` ``[B, L+1]``; ``labels`` ``[B, L+1]`` with a −inf sentinel at index 0 (so
    ``labels[:, i]`` is label ``i − 1``); ``skip`` ``[B, L]`` is 0 where label ``i`` may be
    entered from label ``i − 1`` and −inf where it repeats it.
    """
    return (_log_add2(blanks, labels),
            _log_add3(labels[:, 1:], blanks[:, :-1], labels[:, :-1] + skip))


def _into_backward(blanks: Array, labels: Array, skip: Array) -> tuple[Array, Array]:
    """Log-mass of completing the labelling from each state at frame t, excluding frame t's
    emission (beta'), from beta at t + 1.

    ``labels`` ``[B, L+1]`` has its −inf sentinel at index L; ``skip`` ``[B, L]`` is 0 where
    label ``i`` may go straight to label ``i + 1``.
    """
    return (_log_add2(blanks, labels),
            _log_add3(labels[:, :-1], blanks[:, 1:], labels[:, 1:] + skip))


def _scan(into, blank_emit: Array, label_emit: Array, skip: Array, start: Array,
          *, forward: bool, history: str | None) -> tuple[tuple[Array, Array], Any]:
    """Run one recursion over the frames (axis 0 of the emissions).

    ``blank_emit`` ``[T, B, 1]`` and ``label_emit`` ``[T, B, L]`` are log-probabilities;
    ``start`` ``[B, L+1]`` is the log-mass on the blanks before the first processed frame.
    Returns the final ``(blanks, labels with sentinel)`` and the per-frame history
    ``([T, B, L+1], [T, B, L])``: the states including the frame's emission
    (``history="including"``), the ``into`` terms without it (``"excluding"``), or None.
    """
    labels = jnp.full(start.shape, -jnp.inf, start.dtype)
    label_slot = slice(1, None) if forward else slice(None, -1)

    def step(carry, emit):
        blanks, labels = carry
        e_blank, e_label = emit
        to_blanks, to_labels = into(blanks, labels, skip)
        new_blanks, new_labels = to_blanks + e_blank, to_labels + e_label
        carry = (new_blanks, labels.at[:, label_slot].set(new_labels))
        if history == "including":
            return carry, (new_blanks, new_labels)
        if history == "excluding":
            return carry, (to_blanks, to_labels)
        return carry, None

    return jax.lax.scan(step, (start, labels), (blank_emit, label_emit), reverse=not forward)


def _skip_mask(labels: Array, dtype) -> Array:
    """0 where label i differs from label i − 1 (i >= 1), −inf elsewhere; ``[B, L]``."""
    previous = jnp.pad(labels, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
    allowed = (labels != previous) & (jnp.arange(labels.shape[-1]) > 0)
    return jnp.where(allowed, 0.0, -jnp.inf).astype(dtype)


def _emissions(log_probs: Array, labels: Array, logit_lengths: Array,
               blank_id: int) -> tuple[Array, Array]:
    """Time-major blank ``[T, B, 1]`` and label ``[T, B, L]`` log-probabilities, with the
    padded-frame convention (blank 0, labels −inf for ``t >= logit_lengths[b]``)."""
    max_time = log_probs.shape[1]
    frame_valid = (jnp.arange(max_time)[None, :] < logit_lengths[:, None])[..., None]
    blank = jnp.where(frame_valid, log_probs[..., blank_id:blank_id + 1], 0.0)
    label = jnp.take_along_axis(log_probs, labels[:, None, :], axis=2)
    label = jnp.where(frame_valid, label, -jnp.inf)
    return jnp.swapaxes(blank, 0, 1), jnp.swapaxes(label, 0, 1)


def _alpha(log_probs: Array, labels: Array, logit_lengths: Array, blank_id: int, *,
           history: str | None):
    blank_emit, label_emit = _emissions(log_probs, labels, logit_lengths, blank_id)
    batch, max_label = labels.shape
    start = jnp.full((batch, max_label + 1), -jnp.inf, log_probs.dtype).at[:, 0].set(0.0)
    final, states = _scan(_into_forward, blank_emit, label_emit,
                          _skip_mask(labels, log_probs.dtype), start, forward=True,
                          history=history)
    return final, states, (blank_emit, label_emit)


def _final_log_prob(final: tuple[Array, Array], label_lengths: Array) -> Array:
    """log p = logaddexp(last blank, last label) after the final frame, ``[B]``."""
    blanks, labels = final
    index = label_lengths[:, None]
    return jnp.logaddexp(jnp.take_along_axis(blanks, index, axis=1)[:, 0],
                         jnp.take_along_axis(labels, index, axis=1)[:, 0])


def _log_prob(log_probs: Array, labels: Array, label_lengths: Array, logit_lengths: Array,
              blank_id: int) -> Array:
    """log p(labels | logits) ``[B]`` from the alpha recursion alone."""
    final, _, _ = _alpha(log_probs, labels, logit_lengths, blank_id, history=None)
    return _final_log_prob(final, label_lengths)


def _log_prob_and_posteriors(log_probs: Array, labels: Array, label_lengths: Array,
                             logit_lengths: Array, blank_id: int) -> tuple[Array, Array, Array]:
    """log p ``[B]`` and the state posteriors P(state at frame t | labels, logits) =
    alpha_t·beta_t / (emit_t·p), summed over the blanks ``[T, B]`` and per label ``[T, B, L]``
    (meaningful for frames ``t < logit_lengths[b]`` of sequences with p > 0 only).
    """
    final, (alpha_blank, alpha_label), (blank_emit, label_emit) = _alpha(
        log_probs, labels, logit_lengths, blank_id, history="including")
    log_prob = _final_log_prob(final, label_lengths)
    max_label = labels.shape[1]
    end = jnp.where(jnp.arange(max_label + 1)[None, :] == label_lengths[:, None], 0.0, -jnp.inf)
    skip_next = jnp.pad(_skip_mask(labels, log_probs.dtype)[:, 1:], ((0, 0), (0, 1)),
                        constant_values=-jnp.inf)
    _, (beta_blank, beta_label) = _scan(_into_backward, blank_emit, label_emit, skip_next,
                                        end.astype(log_probs.dtype), forward=False,
                                        history="excluding")
    # alpha includes frame t's emission and beta' excludes it, so alpha·beta' ∝ the state
    # posterior. Normalising each frame to sum to 1 (rather than dividing by p) cancels the
    # rounding error that alpha and beta accumulate over the frames, which is common to
    # all states of a frame: float32 gradients stay accurate to ~1e-7 on long sequences.
    blank_log = alpha_blank + beta_blank
    label_log = alpha_label + beta_label
    top = _finite_floor(jnp.maximum(jnp.max(blank_log, axis=-1), jnp.max(label_log, axis=-1,
                                                                        initial=-jnp.inf)))
    blank_post = jnp.exp(blank_log - top[..., None])
    label_post = jnp.exp(label_log - top[..., None])
    total = jnp.sum(blank_post, axis=-1) + jnp.sum(label_post, axis=-1)
    scale = 1.0 / jnp.where(total > 0, total, 1.0)
    blank_post = blank_post * scale[..., None]
    label_post = label_post * scale[..., None]
    return log_prob, jnp.sum(blank_post, axis=-1), label_post


def _nll(log_prob: Array, invalid: Array) -> Array:
    """−log p clamped at 0 (see :func:`ctc_loss`), NaN for invalid sequences."""
    return jnp.where(invalid, jnp.nan, jnp.maximum(-log_prob, 0.0))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _ctc_nll(logits: Array, labels: Array, label_lengths: Array, logit_lengths: Array,
             invalid: Array, blank_id: int) -> Array:
    """Per-sequence −log p(labels | logits), ``[B]``; +inf where no alignment exists."""
    log_probs = _log_softmax(logits)
    return _nll(_log_prob(log_probs, labels, label_lengths, logit_lengths, blank_id), invalid)


def _ctc_nll_fwd(logits, labels, label_lengths, logit_lengths, invalid, blank_id):
    log_probs = _log_softmax(logits)
    log_prob, blank_post, label_post = _log_prob_and_posteriors(
        log_probs, labels, label_lengths, logit_lengths, blank_id)
    residuals = (log_probs, blank_post, label_post, log_prob, labels, logit_lengths, invalid)
    return _nll(log_prob, invalid), residuals


def _ctc_nll_bwd(blank_id, residuals, cotangent):
    """d(−log p)/d logits[b, t, k] = softmax_k − Σ_{states s of class k} posterior_t(s).

    Zero for ``t >= logit_lengths[b]`` and for sequences with no alignment (p = 0); NaN for
    invalid sequences.
    """
    log_probs, blank_post, label_post, log_prob, labels, logit_lengths, invalid = residuals
    max_time, num_classes = log_probs.shape[1:]
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=log_probs.dtype)
    occupancy = jnp.einsum("tbl,blk->btk", label_post, one_hot)
    occupancy = occupancy + (jnp.swapaxes(blank_post, 0, 1)[..., None]
                             * jax.nn.one_hot(blank_id, num_classes, dtype=log_probs.dtype))
    feasible = jnp.isfinite(log_prob)
    valid = (jnp.arange(max_time)[None, :] < logit_lengths[:, None]) & feasible[:, None]
    scale = jnp.where(invalid, jnp.nan, jnp.where(feasible, cotangent, 0.0))[:, None, None]
    grad = jnp.where(valid[..., None], jnp.exp(log_probs) - occupancy, 0.0) * scale
    return grad, None, None, None, None


_ctc_nll.defvjp(_ctc_nll_fwd, _ctc_nll_bwd)


# ----------------------------------------------------------------------------- public


def ctc_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    logit_lengths: ArrayLike,
    label_lengths: ArrayLike,
    blank_id: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Array:
    """Connectionist temporal classification loss.

    For each sequence ``b`` the loss is ``−log p(y_b | x_b)``, where
    ``p(y | x) = Σ_{π ∈ B⁻¹(y)} Π_t softmax(logits_t)[π_t]`` sums over every alignment
    ``π`` of length ``T_b`` that collapses to ``y`` (merge repeats, then drop blanks). It is
    computed with the alpha recursion over the extended label
    ``(blank, y1, blank, ..., yL, blank)`` in log space; the gradient is the closed form
    ``softmax(logits_t) − Σ_{s: ext(s)=k} alpha_t(s)·beta_t(s) / p`` from the beta recursion
    (a custom VJP), exactly zero for frames ``t >= logit_lengths[b]``.

    Reductions: ``"none"`` returns the per-sequence negative log-likelihood ``[B]``;
    ``"sum"`` sums it; ``"mean"`` divides each sequence's loss by its label length
    (clamped to at least 1) and then averages over the batch: PyTorch's
    ``ctc_loss(reduction="mean")`` convention, not a plain mean over sequences.

    Sequences with no alignment (``T_b`` smaller than ``L_b`` plus the number of repeated
    neighbours in the label) have loss +inf, or 0 with ``zero_infinity=True``; their
    gradient is 0 either way.

    Precision: the log-softmax and the recursion use log1p so that a near-certain labelling
    keeps its digits in float32 (a loss of 1e-14 over 400 frames comes out to ~1e-6
    relative error, where optax's float32 loss turns negative, optax #1771). As a last
    guard the value is clamped at 0, since the exact value −log p is >= 0 and rounding can
    only overshoot it by a few ulps; the gradient (the posterior formula) is not affected.

    Args:
      logits: ``[B, T, K]`` unnormalised scores (log-softmax is applied inside); any float
        dtype, computed in float32 at least.
      labels: ``[B, L]`` integer labels, right-padded; entries at positions
        ``>= label_lengths[b]`` are ignored.
      logit_lengths: ``[B]`` integers in ``[0, T]``: frames of each sequence.
      label_lengths: ``[B]`` integers in ``[0, L]``: labels of each sequence.
      blank_id: the blank class, in ``[0, K)``.
      reduction: ``"mean"`` (see above), ``"sum"`` or ``"none"``.
      zero_infinity: replace infinite losses (impossible alignments) by 0.

    Returns:
      A scalar, or ``[B]`` for ``reduction="none"``; float32 at least.

    Raises:
      ValueError: wrong ranks or dtypes, a batch-size mismatch, ``blank_id`` outside
        ``[0, K)``; and, when the arrays are concrete (not traced), lengths outside
        ``[0, T]`` / ``[0, L]``, or a label inside its length that is ``blank_id`` or outside
        ``[0, K)``. Under ``jit`` these value errors cannot raise: that sequence's loss and
        gradient are NaN instead (also with ``zero_infinity=True``). The eager check reads
        the three integer arrays on the host.

    References:
      Graves et al., `Connectionist temporal classification: labelling unsegmented sequence
      data with recurrent neural networks <https://dl.acm.org/doi/10.1145/1143844.1143891>`_,
      ICML 2006.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.ctc_loss(
      ...     jnp.zeros((1, 2, 2)),
      ...     jnp.array([[1]]),
      ...     logit_lengths=jnp.array([2]),
      ...     label_lengths=jnp.array([1]))
      Array(0.2877, dtype=float32)
    """
    check_reduction(reduction)
    logits, labels = real_array("logits", logits), real_array("labels", labels)
    logit_lengths, label_lengths = jnp.asarray(logit_lengths), jnp.asarray(label_lengths)
    _check_ctc_shapes(logits, labels, logit_lengths, label_lengths, blank_id)
    _, max_time, num_classes = logits.shape
    _check_ctc_values(labels, logit_lengths, label_lengths, max_time, num_classes, blank_id)

    invalid = _invalid_sequences(labels, logit_lengths, label_lengths, max_time, num_classes,
                                 blank_id)
    label_lengths = jnp.where(invalid, 0, label_lengths).astype(jnp.int32)
    logit_lengths = jnp.where(invalid, 0, logit_lengths).astype(jnp.int32)
    # Padding (and the labels of invalid sequences) become blank so that gathers stay in
    # bounds; positions past label_lengths never take part in an alignment.
    inside = jnp.arange(labels.shape[1])[None, :] < label_lengths[:, None]
    labels = jnp.where(inside, labels, blank_id).astype(jnp.int32)
    dtype = compute_dtype(logits.dtype)
    nll = cast(Array, _ctc_nll(logits.astype(dtype), labels, label_lengths, logit_lengths,
                               invalid, blank_id))
    if zero_infinity:
        nll = jnp.where(jnp.isposinf(nll), 0.0, nll)
    if reduction == "mean":
        nll = nll / jnp.maximum(label_lengths, 1).astype(dtype)
    return reduce_loss(nll, reduction=reduction)


def ctc_greedy_decode(
    logits: ArrayLike, logit_lengths: ArrayLike, *, blank_id: int = 0
) -> tuple[Array, Array]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks.

    Frames ``t >= logit_lengths[b]`` are ignored. The output has a fixed shape so the
    function works under ``jit``: decoded labels are left-aligned in ``[B, T]`` and the
    positions after each sequence's decoded length hold ``blank_id`` (which a CTC
    vocabulary maps to nothing).

    Args:
      logits: ``[B, T, K]`` scores (log-probabilities or unnormalised; only the argmax
        matters).
      logit_lengths: ``[B]`` integers in ``[0, T]``.
      blank_id: the blank class, in ``[0, K)``.

    Returns:
      ``(decoded [B, T] int32, lengths [B] int32)``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> best_path = jnp.array([[1, 1, 0, 1, 2], [1, 1, 0, 1, 2]])
      >>> logits = jax.nn.one_hot(best_path, 3)
      >>> decoded, lengths = lossjax.ctc_greedy_decode(logits, jnp.array([5, 4]))
      >>> decoded  # 1 1 _ 1 2 -> 1 1 2; the second stops after 4 frames: 1 1 _ 1 -> 1 1
      Array([[1, 1, 2, 0, 0],
             [1, 1, 0, 0, 0]], dtype=int32)
      >>> lengths
      Array([3, 2], dtype=int32)
    """
    logits, logit_lengths = jnp.asarray(logits), jnp.asarray(logit_lengths)
    if logits.ndim != 3:
        raise ValueError(f"logits must be [B, T, K], got shape {tuple(logits.shape)}")
    batch, max_time, num_classes = logits.shape
    if tuple(logit_lengths.shape) != (batch,) or not jnp.issubdtype(logit_lengths.dtype,
                                                                    jnp.integer):
        raise ValueError(
            f"logit_lengths must be integers of shape ({batch},), got {logit_lengths.dtype} "
            f"{tuple(logit_lengths.shape)}"
        )
    _check_blank_id(blank_id, num_classes)
    best = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    previous = jnp.pad(best, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
    keep = ((best != blank_id) & (best != previous)
            & (jnp.arange(max_time)[None, :] < logit_lengths[:, None]))
    # A stable sort of ``not keep`` moves the kept frames to the front, in order.
    order = jnp.argsort(~keep, axis=1, stable=True)
    lengths = jnp.sum(keep, axis=1, dtype=jnp.int32)
    decoded = jnp.take_along_axis(best, order, axis=1)
    decoded = jnp.where(jnp.arange(max_time)[None, :] < lengths[:, None], decoded, blank_id)
    return decoded, lengths


def perplexity(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
) -> Array:
    """Perplexity ``exp(mean token cross-entropy)`` of integer ``labels`` under ``logits``.

    ``PPL = exp((1/N) Σ_i −log softmax(logits_i)[labels_i])`` over the N tokens that are
    kept (not ``ignore_index``, ``where`` true), pooled over the whole batch (corpus
    perplexity, not a mean of per-sequence perplexities). With no token kept the mean
    cross-entropy is 0 and the perplexity 1. An out-of-range label gives NaN.

    Args:
      logits: ``[..., K]`` unnormalised scores.
      labels: ``[...]`` integer class indices.
      ignore_index: label value to skip (e.g. padding).
      where: optional boolean mask broadcastable to ``labels.shape``.

    Returns:
      A scalar, float32 at least.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.perplexity(jnp.zeros((2, 4)), jnp.array([0, 3]))
      Array(4., dtype=float32)
    """
    logits, safe_labels, out_of_range, mask = scores_and_labels(
        logits, labels, -1, where, ignore_index)
    loss = integer_label_cross_entropy(logits, safe_labels)
    loss = jnp.where(out_of_range, jnp.nan, loss)
    return jnp.exp(reduce_loss(loss, where=mask, reduction="mean"))
