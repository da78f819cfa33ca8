"""Margin losses: binary and multiclass hinge, perceptron, soft margin, and PyTorch's
multi-class / multi-label margin losses.

Each computes one loss per example (elementwise for the binary losses) and hands it to
:func:`~lossjax.losses._reduce.reduce_loss`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._numerics import take_class
from lossjax._validation import check_non_negative
from lossjax.losses._inputs import (
    class_axis_inputs,
    class_weight_vector,
    elementwise_inputs,
    scores_and_labels,
    signed_labels,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = [
    "categorical_hinge",
    "hinge",
    "multi_margin",
    "multiclass_hinge",
    "multiclass_perceptron",
    "multilabel_margin",
    "multilabel_soft_margin",
    "perceptron",
    "soft_margin",
    "squared_hinge",
]


def _signed_margins(scores: ArrayLike, labels: ArrayLike, where: ArrayLike | None) -> Array:
    """``y·s`` elementwise, with labels in {−1, 1} or {0, 1} (0 read as −1)."""
    s, y = elementwise_inputs(("scores", scores), ("labels", labels), where=where)
    return signed_labels(y) * s


def hinge(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary hinge loss, elementwise: ``max(0, 1 − y·s)``.

    ``labels`` may be in {−1, 1} or {0, 1}: a 0 label is read as −1. At the margin
    ``y·s = 1`` the subgradient used is 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.hinge(jnp.array([0.5, -2.0]), jnp.array([1.0, -1.0]))
      Array(0.25, dtype=float32)
    """
    check_reduction(reduction)
    margins = _signed_margins(scores, labels, where)
    return reduce_loss(jax.nn.relu(1.0 - margins), weights=weights, where=where,
                       reduction=reduction)


def squared_hinge(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Squared hinge loss, elementwise: ``max(0, 1 − y·s)²``; labels in {−1, 1} or {0, 1}.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.squared_hinge(jnp.array([0.5, -2.0]), jnp.array([1.0, -1.0]))
      Array(0.125, dtype=float32)
    """
    check_reduction(reduction)
    margins = _signed_margins(scores, labels, where)
    return reduce_loss(jnp.square(jax.nn.relu(1.0 - margins)), weights=weights, where=where,
                       reduction=reduction)


def multiclass_hinge(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Crammer–Singer multiclass hinge: ``max_k (s_k + [k ≠ y]) − s_y`` per example.

    ``scores`` ``[..., K]``, integer ``labels`` ``[...]``; an out-of-range label gives NaN.
    Equals optax's ``multiclass_hinge_loss``. References: Crammer & Singer, "On the
    Algorithmic Implementation of Multiclass Kernel-based Vector Machines" (2001).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.multiclass_hinge(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([1]))
      Array(2., dtype=float32)
    """
    check_reduction(reduction)
    s, safe_labels, out_of_range, mask = scores_and_labels(scores, labels, -1, where,
                                                           name="scores")
    is_label = jax.nn.one_hot(safe_labels, s.shape[-1], dtype=bool)
    loss = jnp.max(jnp.where(is_label, s, s + 1.0), axis=-1) - take_class(s, safe_labels)
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=mask,
                       reduction=reduction)


def categorical_hinge(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Keras' categorical hinge, per example: ``max(0, neg − pos + 1)``.

    ``pos = Σ_k t_k·s_k`` and ``neg = max_k (1 − t_k)·s_k`` with one-hot ``targets``. This is
    Keras' exact definition, including its quirk: the true class enters ``neg`` as ``0``, so
    when every wrong-class score is negative ``neg`` is 0, not the largest wrong score (use
    :func:`multiclass_hinge` for the Crammer–Singer loss over wrong classes only). The
    subgradient at the hinge is 0.

    Args:
      predictions: ``[..., K, ...]`` scores; ``targets``: one-hot, the same shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.categorical_hinge(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([[0.0, 1.0, 0.0]]))
      Array(2., dtype=float32)
    """
    check_reduction(reduction)
    s, t = class_axis_inputs(("predictions", predictions), ("targets", targets), axis=axis,
                             where=where)
    # Double where: a −inf score where t = 0 (pos) or t = 1 (neg) must not give 0·(−inf).
    pos = jnp.sum(t * jnp.where(t == 0, 0.0, s), axis=-1)
    neg = jnp.max((1.0 - t) * jnp.where(t == 1, 0.0, s), axis=-1)
    return reduce_loss(jax.nn.relu(neg - pos + 1.0), weights=weights, where=where,
                       reduction=reduction)


def soft_margin(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Soft-margin (logistic) loss, elementwise: ``log(1 + exp(−y·s))``.

    PyTorch's ``SoftMarginLoss``; labels in {−1, 1} or {0, 1} (0 read as −1). It is
    :func:`sigmoid_binary_cross_entropy` with {0, 1} labels, written as ``softplus(−y·s)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.soft_margin(jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0]))
      Array(1.003, dtype=float32)
    """
    check_reduction(reduction)
    margins = _signed_margins(scores, labels, where)
    return reduce_loss(jax.nn.softplus(-margins), weights=weights, where=where,
                       reduction=reduction)


def perceptron(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Perceptron loss, elementwise: ``max(0, −y·s)``; labels in {−1, 1} or {0, 1}.

    Hinge without the margin; optax's ``perceptron_loss``. Subgradient 0 at ``y·s = 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.perceptron(jnp.array([0.5, -1.0]), jnp.array([1.0, 1.0]))
      Array(0.5, dtype=float32)
    """
    check_reduction(reduction)
    margins = _signed_margins(scores, labels, where)
    return reduce_loss(jax.nn.relu(-margins), weights=weights, where=where,
                       reduction=reduction)


def multiclass_perceptron(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multiclass perceptron loss, per example: ``max_k s_k − s_y`` (integer labels).

    optax's ``multiclass_perceptron_loss``; an out-of-range label gives NaN.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.multiclass_perceptron(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([1]))
      Array(1., dtype=float32)
    """
    check_reduction(reduction)
    s, safe_labels, out_of_range, mask = scores_and_labels(scores, labels, axis, where,
                                                           name="scores")
    loss = jnp.max(s, axis=-1) - take_class(s, safe_labels)
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=mask,
                       reduction=reduction)


def multi_margin(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    p: int = 1,
    margin: float = 1.0,
    class_weights: ArrayLike | None = None,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Weston–Watkins multiclass hinge, per example (PyTorch's ``MultiMarginLoss``).

    ``loss = w_y/K · Σ_{k≠y} max(0, margin − s_y + s_k)^p`` with ``p`` 1 or 2 and optional
    per-class weights ``w`` ``[K]`` (PyTorch's ``weight``). Unlike :func:`multiclass_hinge`
    (Crammer–Singer: the worst wrong class only) every violating class counts. Integer
    labels; an out-of-range label gives NaN.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.multi_margin(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([1]))
      Array(0.6667, dtype=float32)
    """
    check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    check_non_negative("margin", margin)
    s, safe_labels, out_of_range, mask = scores_and_labels(scores, labels, axis, where,
                                                           name="scores")
    num_classes = s.shape[-1]
    is_label = jax.nn.one_hot(safe_labels, num_classes, dtype=bool)
    label_score = take_class(s, safe_labels)[..., None]
    violation = jnp.where(is_label, 0.0, jax.nn.relu(margin - label_score + s))
    loss = jnp.sum(violation**p, axis=-1) / num_classes
    if class_weights is not None:
        loss = loss * class_weight_vector(class_weights, num_classes, s.dtype)[safe_labels]
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=mask,
                       reduction=reduction)


def multilabel_margin(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multi-label hinge, per example (PyTorch's ``MultiLabelMarginLoss``).

    ``loss = 1/K · Σ_{j: y_j=1} Σ_{i: y_i=0} max(0, 1 − (s_j − s_i))``: every positive class
    should beat every negative class by 1. ``labels`` is a multi-hot ``{0, 1}`` array of the
    scores' shape (PyTorch takes −1-padded index lists instead; convert with
    ``jnp.zeros(K).at[idx].set(1)``). A row with no positive or no negative class has loss 0.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.multilabel_margin(jnp.array([[0.5, 1.0, 0.0]]), jnp.array([[1.0, 0.0, 0.0]]))
      Array(0.6667, dtype=float32)
    """
    check_reduction(reduction)
    s, y = class_axis_inputs(("scores", scores), ("labels", labels), axis=axis, where=where)
    # pairs[..., j, i] = hinge of positive j against negative i
    pair_mask = y[..., :, None] * (1.0 - y[..., None, :])
    pairs = jax.nn.relu(1.0 - (s[..., :, None] - s[..., None, :]))
    pairs = jnp.where(pair_mask == 0, 0.0, pairs)
    loss = jnp.sum(pairs * pair_mask, axis=(-2, -1)) / s.shape[-1]
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def multilabel_soft_margin(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multi-label logistic loss, per example (PyTorch's ``MultiLabelSoftMarginLoss``).

    ``loss = 1/K · Σ_k w_k·[softplus(x_k) − y_k·x_k]``: the class-mean of
    :func:`sigmoid_binary_cross_entropy`, one value per example; ``labels`` in {0, 1} (or
    probabilities), ``class_weights`` optional ``[K]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.multilabel_soft_margin(jnp.array([[0.0, 2.0]]), jnp.array([[1.0, 0.0]]))
      Array(1.41, dtype=float32)
    """
    check_reduction(reduction)
    x, y = class_axis_inputs(("logits", logits), ("labels", labels), axis=axis, where=where)
    per_class = jax.nn.softplus(x) - x * y
    if class_weights is not None:
        per_class = per_class * class_weight_vector(class_weights, x.shape[-1], x.dtype)
    return reduce_loss(jnp.mean(per_class, axis=-1), weights=weights, where=where,
                       reduction=reduction)
