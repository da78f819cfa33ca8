"""Similarity losses between paired vectors: cosine similarity, distance and embedding loss.

Each reduces the feature ``axis`` to one value per example and hands it to
:func:`~lossjax.losses._reduce.reduce_loss`, so ``weights`` and ``where`` are per example
(the inputs' shape without ``axis``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import check_in_range, check_positive
from lossjax.losses._reduce import (
    broadcast_mask,
    check_reduction,
    check_same_shape,
    compute_dtype,
    mask_inputs,
    reduce_loss,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["cosine_distance", "cosine_embedding", "cosine_similarity"]


def normalize_axis(axis: int, shape: tuple[int, ...], name: str) -> int:
    """``axis`` as a non-negative index into ``shape``; ``ValueError`` when out of range."""
    ndim = len(shape)
    if not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis!r} is out of range for {name} of shape {shape}")
    return axis % ndim


def mask_feature_inputs(
    where: ArrayLike | None, axis: int, *arrays: Array
) -> tuple[Array, ...]:
    """Stop the gradient of the examples ``where`` drops, across the whole feature ``axis``.

    ``where`` is per example (broadcastable to the arrays' shape without ``axis``).
    """
    if where is None:
        return arrays
    shape = tuple(arrays[0].shape)
    mask = broadcast_mask(where, shape[:axis] + shape[axis + 1:])
    mask = jnp.broadcast_to(jnp.expand_dims(mask, axis), shape)
    return mask_inputs(mask, *arrays)


def safe_normalize(x: Array, axis: int, eps: float) -> Array:
    """``x / max(‖x‖₂, eps)`` along ``axis``, with the clamp written as ``sqrt(max(Σx², eps²))``.

    Clamping the squared norm before the square root keeps the value and the gradient
    finite at a zero vector (which maps to the zero vector).
    """
    squared = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x / jnp.sqrt(jnp.maximum(squared, jnp.square(jnp.asarray(eps, x.dtype))))


def _cosine(a: Array, b: Array, axis: int, eps: float) -> Array:
    return jnp.sum(safe_normalize(a, axis, eps) * safe_normalize(b, axis, eps), axis=axis)


def _paired_feature_inputs(
    name_a: str, a: ArrayLike, name_b: str, b: ArrayLike, axis: int
) -> tuple[Array, Array, int]:
    a, b = jnp.asarray(a), jnp.asarray(b)
    check_same_shape(name_a, a, name_b, b)
    axis = normalize_axis(axis, tuple(a.shape), name_a)
    dtype = compute_dtype(a.dtype, b.dtype)
    return a.astype(dtype), b.astype(dtype), axis


def _masked_cosine(
    predictions: ArrayLike, targets: ArrayLike, axis: int, eps: float, where: ArrayLike | None
) -> Array:
    """Checked, per-example cosine of two same-shape arrays; ``where``-dropped examples get
    a stopped gradient."""
    check_positive("eps", eps)
    p, t, axis = _paired_feature_inputs("predictions", predictions, "targets", targets, axis)
    p, t = mask_feature_inputs(where, axis, p, t)
    return _cosine(p, t, axis, eps)


def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-8,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Cosine similarity per example: ``Σ p·t / (max(‖p‖, eps) · max(‖t‖, eps))``.

    Higher means more similar (in [−1, 1]); this is the sign of optax's and PyTorch's
    ``cosine_similarity``. Keras' ``CosineSimilarity`` *loss* is the negative of this value;
    use :func:`cosine_distance` (``1 − cos``) to minimise. Each norm is clamped separately
    (PyTorch's convention), computed as ``sqrt(max(Σx², eps²))``, so a zero vector gives a
    similarity of 0 with a finite gradient. optax clamps the squared norm instead:
    ``optax.losses.cosine_similarity(p, t, epsilon=eps**2)`` gives the same numbers.

    Args:
      predictions, targets: the same shape ``[..., D, ...]``; ``axis`` is the feature axis.
      eps: the smallest norm used in the denominator, > 0.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the per-example similarities (``axis`` removed)
      for ``"none"``.
    """
    check_reduction(reduction)
    cos = _masked_cosine(predictions, targets, axis, eps, where)
    return reduce_loss(cos, weights=weights, where=where, reduction=reduction)


def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-8,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Cosine distance per example: ``1 − cosine_similarity(p, t)``, in [0, 2].

    0 for parallel vectors, 2 for opposite ones (non-negative up to rounding). The norms are
    clamped as in :func:`cosine_similarity`; equals
    ``optax.losses.cosine_distance(p, t, epsilon=eps**2)`` and Keras' ``CosineSimilarity``
    loss plus 1.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-example distances (``axis`` removed) for ``"none"``.
    """
    check_reduction(reduction)
    cos = _masked_cosine(predictions, targets, axis, eps, where)
    return reduce_loss(1.0 - cos, weights=weights, where=where, reduction=reduction)


def pair_loss_by_label(
    labels: Array,
    similar: Array,
    dissimilar: Array,
    dissimilar_labels: tuple[int, ...] = (-1, 0),
) -> Array:
    """``similar`` where the label is 1, ``dissimilar`` where it is one of
    ``dissimilar_labels``, NaN for any other label (jit cannot raise)."""
    is_dissimilar = jnp.isin(labels, jnp.asarray(dissimilar_labels))
    loss = jnp.where(labels == 1, similar, dissimilar)
    return jnp.where((labels == 1) | is_dissimilar, loss, jnp.nan)


def check_labels_shape(labels: Array, shape: tuple[int, ...], axis: int, name: str) -> None:
    """``labels`` must have ``shape`` without ``axis`` (one label per example)."""
    expected = shape[:axis] + shape[axis + 1:]
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"labels has shape {tuple(labels.shape)} but {name} has shape {shape}; labels "
            f"must have {name}'s shape without the feature axis {axis}: {expected}"
        )


def cosine_embedding(
    x1: ArrayLike,
    x2: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.0,
    axis: int = -1,
    eps: float = 1e-8,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Cosine embedding loss per pair (PyTorch's ``CosineEmbeddingLoss``).

    With ``c = cosine_similarity(x1, x2)``: ``1 − c`` for a similar pair (label 1) and
    ``max(0, c − margin)`` for a dissimilar pair (label −1, or 0: labels may be in
    {−1, 1} or {0, 1}, as in :func:`~lossjax.hinge`). Any other label value gives NaN for
    that pair (jit cannot raise). The norms are clamped as in :func:`cosine_similarity`
    (PyTorch adds 1e-12 to each squared norm instead: the two agree to a relative
    ~1e-12/‖x‖², and both give 0 at a zero vector).
    At ``c = margin`` the subgradient used is 0.

    Args:
      x1, x2: the same shape ``[..., D, ...]``; ``axis`` is the feature axis.
      labels: ``x1``'s shape without ``axis``.
      margin: in [−1, 1]; PyTorch suggests 0 to 0.5.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-pair losses for ``"none"``.
    """
    check_reduction(reduction)
    check_in_range("margin", margin, -1.0, 1.0, high_inclusive=True)
    check_positive("eps", eps)
    a, b, axis = _paired_feature_inputs("x1", x1, "x2", x2, axis)
    labels = jnp.asarray(labels)
    check_labels_shape(labels, tuple(a.shape), axis, "x1")
    a, b = mask_feature_inputs(where, axis, a, b)
    cos = _cosine(a, b, axis, eps)
    loss = pair_loss_by_label(labels, 1.0 - cos, jax.nn.relu(cos - margin))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)
