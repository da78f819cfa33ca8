"""Similarity losses between paired vectors: cosine similarity, distance and embedding loss.

Each reduces the feature ``axis`` to one value per example and hands it to
:func:`~lossjax.losses._reduce.reduce_loss`, so ``weights`` and ``where`` are per example
(the inputs' shape without ``axis``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._numerics import safe_normalize
from lossjax._validation import check_in_range, check_positive
from lossjax.losses._inputs import (
    check_per_example,
    class_axis_inputs,
    masked_class_inputs,
    normalize_axis,
    pair_loss_by_label,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["cosine_distance", "cosine_embedding", "cosine_similarity"]


def _cosine(a: Array, b: Array, axis: int, eps: float) -> Array:
    return jnp.sum(safe_normalize(a, axis, eps) * safe_normalize(b, axis, eps), axis=axis)


def _masked_cosine(
    predictions: ArrayLike, targets: ArrayLike, axis: int, eps: float, where: ArrayLike | None
) -> tuple[Array, Array | None]:
    """Checked, per-example cosine of two same-shape arrays, and the per-example mask.

    ``where`` is per example, or per feature (the arrays' rank, optax's meaning): a dropped
    feature is left out of the dot product and of both norms (set to 0 in both arrays).
    """
    check_positive("eps", eps)
    (p, t), examples, features = masked_class_inputs(
        ("predictions", predictions), ("targets", targets), axis=axis, where=where)
    if features is not None:
        p, t = (jnp.where(features, a, 0.0) for a in (p, t))
    return _cosine(p, t, -1, eps), examples


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
      where: per example (the arrays' shape without ``axis``), or per feature: a mask of
        the arrays' rank (optax's meaning) leaves those features out of the dot product
        and both norms; an example that keeps no feature is left out.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the per-example similarities (``axis`` removed)
      for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.cosine_similarity(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
      Array(0.7071, dtype=float32)
    """
    check_reduction(reduction)
    cos, examples = _masked_cosine(predictions, targets, axis, eps, where)
    return reduce_loss(cos, weights=weights, where=examples, reduction=reduction)


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
    loss plus 1. ``where`` as in :func:`cosine_similarity`: per example, or per feature
    (a mask of the arrays' rank, optax's meaning).

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-example distances (``axis`` removed) for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.cosine_distance(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 1.0]]))
      Array(0.2929, dtype=float32)
    """
    check_reduction(reduction)
    cos, examples = _masked_cosine(predictions, targets, axis, eps, where)
    return reduce_loss(1.0 - cos, weights=weights, where=examples, reduction=reduction)


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

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.cosine_embedding(
      ...     jnp.array([[1.0, 0.0], [1.0, 0.0]]),
      ...     jnp.array([[1.0, 1.0], [0.0, 1.0]]),
      ...     jnp.array([1, -1]))
      Array(0.1464, dtype=float32)
    """
    check_reduction(reduction)
    check_in_range("margin", margin, -1.0, 1.0, high_inclusive=True)
    check_positive("eps", eps)
    labels = real_array("labels", labels)
    check_per_example(labels, jnp.shape(x1), normalize_axis(axis, jnp.shape(x1), "x1"), "x1")
    a, b = class_axis_inputs(("x1", x1), ("x2", x2), axis=axis, where=where)
    cos = _cosine(a, b, -1, eps)
    loss = pair_loss_by_label(labels, 1.0 - cos, jax.nn.relu(cos - margin))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)
