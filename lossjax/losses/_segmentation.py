"""Overlap losses for segmentation: Tversky, Sørensen–Dice and generalized Dice.

Both take predictions and targets of one shape ``[B, *spatial, C]`` (the class axis last;
binary segmentation uses ``C = 1``), sum soft counts over the spatial axes, score every
example and class, and average the classes into one loss per example, which is handed to
:func:`~lossjax.losses._reduce.reduce_loss`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from lossjax._numerics import safe_ratio
from lossjax._validation import check_non_negative
from lossjax.losses._inputs import (
    class_weight_vector,
    example_mask,
    float_inputs,
    keep_entries,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["dice", "generalized_dice", "tversky"]


def _summed_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Normalise ``axis`` to sorted non-negative axes; the class axis may not be summed."""
    if ndim < 2:
        raise ValueError(
            f"predictions must have at least 2 dimensions [B, ..., C], got ndim {ndim}"
        )
    if axis is None:
        return tuple(range(1, ndim - 1))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for inputs with ndim {ndim}")
        out.append(a % ndim)
    if ndim - 1 in out:
        raise ValueError(
            f"axis {axis} includes the class axis (the last, {ndim - 1}); classes are "
            "scored separately and then averaged, never summed"
        )
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis} repeats an axis")
    return tuple(sorted(out))


def _class_probabilities(predictions: Array, from_logits: bool) -> Array:
    if not from_logits:
        return predictions
    if predictions.shape[-1] == 1:
        return jax.nn.sigmoid(predictions)
    return jax.nn.softmax(predictions, axis=-1)


def _segmentation_inputs(
    predictions: ArrayLike,
    targets: ArrayLike,
    axis: int | Sequence[int] | None,
    from_logits: bool,
    where: ArrayLike | None,
) -> tuple[Array, Array, tuple[int, ...]]:
    """Check and cast ``[B, *spatial, C]`` inputs, stop the gradient of examples ``where``
    drops, and turn logits into probabilities; return ``(probs, targets, summed_axes)``."""
    p, t = float_inputs(("predictions", predictions), ("targets", targets))
    axes = _summed_axes(axis, p.ndim)
    kept_axes = tuple(a for a in range(p.ndim - 1) if a not in axes)
    example_shape = tuple(p.shape[a] for a in kept_axes)
    p, t = keep_entries(example_mask(where, example_shape), p, t,
                        feature_axes=axes + (p.ndim - 1,))
    return _class_probabilities(p, from_logits), t, axes


def _overlap_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float,
    beta: float,
    tp_scale: float,
    smooth: float,
    axis: int | Sequence[int] | None,
    from_logits: bool,
    class_weights: ArrayLike | None,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    reduction: str,
) -> Array:
    """``1 − (s·TP + smooth) / (s·TP + α·FP + β·FN + smooth)`` per example and class."""
    p, t, axes = _segmentation_inputs(predictions, targets, axis, from_logits, where)
    # FP = Σp·(1 − t) and FN = Σ(1 − p)·t, formed from three reductions instead of five.
    tp = jnp.sum(p * t, axis=axes)
    fp = jnp.sum(p, axis=axes) - tp
    fn = jnp.sum(t, axis=axes) - tp
    numerator = tp_scale * tp + smooth
    denominator = tp_scale * tp + alpha * fp + beta * fn + smooth
    per_class = 1.0 - safe_ratio(numerator, denominator)  # example_shape + (C,)

    if class_weights is not None:
        per_class = per_class * class_weight_vector(class_weights, p.shape[-1], p.dtype)
    per_example = jnp.mean(per_class, axis=-1)
    return reduce_loss(per_example, weights=weights, where=where, reduction=reduction)


def tversky(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth: float = 1.0,
    axis: int | Sequence[int] | None = None,
    from_logits: bool = False,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Tversky loss, one value per example: the class average of ``1 − TI_c``.

    Soft counts per example and class ``c``, summed over ``axis``::

        TP = Σ p·t,   FP = Σ p·(1 − t),   FN = Σ (1 − p)·t
        TI = (TP + smooth) / (TP + α·FP + β·FN + smooth)

    ``α`` weighs false positives, ``β`` false negatives; ``α = β = 0.5`` gives Dice with
    ``smooth`` halved (see :func:`dice`), ``α = β = 1`` the Jaccard (IoU) loss. Where the
    denominator is 0 (``smooth = 0`` and both masks empty) ``TI = 1`` (perfect, loss 0),
    with a finite (zero) gradient.

    Per example the losses ``1 − TI_c`` are averaged over the ``C`` classes; with
    ``class_weights`` ``w`` the per-example loss is ``Σ_c w_c·(1 − TI_c) / C`` (weights
    multiply, then the class mean: optax's ``dice_loss`` convention, so all-ones weights
    change nothing; weights are not renormalised).

    Equals ``optax.losses.dice_loss(p, t, alpha=α, beta=β, smooth=smooth,
    apply_softmax=from_logits)`` (up to rounding: optax forms ``FP = Σp − TP``), except
    that lossjax does not check that probabilities sum to 1 and reduces over the batch
    through ``reduction``. Keras 3's ``Tversky`` uses an epsilon instead of ``smooth``, pools
    every axis, classes included, into one score, and (as of Keras 3.15) applies ``alpha`` to
    ``Σ(1 − p)·t`` and ``beta`` to ``Σp·(1 − t)``: Keras ``tversky(alpha=a, beta=b)`` is
    lossjax ``tversky(alpha=b, beta=a)`` (checked by ``bench/keras_parity.py``).

    Args:
      predictions: ``[B, *spatial, C]`` probabilities, or logits with ``from_logits=True``
        (sigmoid when ``C == 1``, else softmax over the class axis). Probabilities are not
        checked.
      targets: the same shape; one-hot, binary or soft targets in [0, 1].
      alpha, beta: >= 0, weights of false positives and false negatives.
      smooth: >= 0, added to numerator and denominator.
      axis: axes summed into the counts (int or tuple, not the class axis); default: every
        axis but the first (batch) and the last (class).
      class_weights: optional ``[C]`` weights of the per-class losses.

    Returns:
      Scalar for ``"mean"``/``"sum"``; for ``"none"`` the per-example losses, i.e. the
      input shape without the summed axes and the class axis (``[B]`` by default).

    References:
      Salehi, Erdogmus and Gholipour, "Tversky loss function for image segmentation using
      3D fully convolutional deep networks" (2017).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.tversky(jnp.array([[[0.8], [0.2]]]), jnp.array([[[1.0], [0.0]]]))
      Array(0.1, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("alpha", alpha)
    check_non_negative("beta", beta)
    check_non_negative("smooth", smooth)
    return _overlap_loss(
        predictions, targets, alpha=alpha, beta=beta, tp_scale=1.0, smooth=smooth, axis=axis,
        from_logits=from_logits, class_weights=class_weights, weights=weights, where=where,
        reduction=reduction,
    )


def dice(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: float = 1.0,
    axis: int | Sequence[int] | None = None,
    from_logits: bool = False,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Soft Sørensen–Dice loss, one value per example: the class average of ``1 − D_c``.

    Per example and class ``c``, sums over ``axis``::

        D = (2·Σ p·t + smooth) / (Σ p + Σ t + smooth)

    With ``smooth = 0`` and both masks empty ``D = 1`` (loss 0, finite zero gradient).
    Classes are averaged, or weighted by ``class_weights`` exactly as in :func:`tversky`.

    This is the textbook smoothing (as in MONAI and segmentation_models). It equals
    ``tversky(α=β=0.5, smooth=smooth/2)`` and so
    ``optax.losses.dice_loss(..., smooth=smooth/2)``: optax's ``smooth`` enters the
    denominator ``½(Σp + Σt) + smooth``, i.e. counts double. With ``smooth = 0`` the three
    coincide. ``optax.losses.binary_dice_loss`` is the ``C = 1``, ``from_logits=True``
    case, also with ``smooth/2``. Keras 3's ``Dice`` has no smoothing (an epsilon in the
    denominator) and pools the class axis with the others into one score.

    Args:
      predictions: ``[B, *spatial, C]`` probabilities, or logits with ``from_logits=True``
        (sigmoid when ``C == 1``, else softmax over the class axis).
      targets: the same shape; one-hot, binary or soft targets in [0, 1].
      smooth: >= 0.
      axis: axes summed (default: all but the first and the last).
      class_weights: optional ``[C]`` weights of the per-class losses.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-example losses (``[B]`` by default) for
      ``"none"``.

    References:
      Milletari, Navab and Ahmadi, "V-Net" (2016); Sørensen (1948), Dice (1945).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.dice(jnp.array([[[0.8], [0.2]]]), jnp.array([[[1.0], [0.0]]]))
      Array(0.1333, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("smooth", smooth)
    # 2·TP + FP + FN = Σp + Σt.
    return _overlap_loss(
        predictions, targets, alpha=1.0, beta=1.0, tp_scale=2.0, smooth=smooth, axis=axis,
        from_logits=from_logits, class_weights=class_weights, weights=weights, where=where,
        reduction=reduction,
    )


def generalized_dice(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: float = 1e-5,
    axis: int | Sequence[int] | None = None,
    from_logits: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Generalized Dice loss (Sudre et al.), one value per example.

    Classes are pooled with weights ``w_c = 1 / (Σ t_c)²`` (inverse squared target volume, so
    small structures count as much as large ones)::

        loss = 1 − (2·Σ_c w_c Σ p·t + smooth) / (Σ_c w_c Σ (p + t) + smooth)

    sums over ``axis`` as in :func:`dice`. A class absent from an example's target would get
    an infinite weight; it takes the largest finite weight of that example instead (MONAI's
    convention), and an example with no target at all weighs every class 1. ``smooth``
    defaults to MONAI's 1e-5 (the weights are ~1/volume², so 1 would swamp them).
    optax's ``multiclass_generalized_dice_loss`` is a different estimator: per-class Dice
    losses averaged with batch-level inverse-frequency weights (use :func:`dice` with
    ``class_weights`` for that).

    Args:
      predictions: ``[B, *spatial, C]`` probabilities, or logits with ``from_logits=True``.
      targets: the same shape; one-hot (or soft) targets.
      smooth: >= 0.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-example losses (``[B]`` by default) for
      ``"none"``.

    References: Sudre et al., "Generalised Dice overlap as a deep learning loss function for
    highly unbalanced segmentations" (DLMIA 2017).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.generalized_dice(jnp.array([[[0.8], [0.2]]]), jnp.array([[[1.0], [0.0]]]))
      Array(0.2, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("smooth", smooth)
    p, t, axes = _segmentation_inputs(predictions, targets, axis, from_logits, where)
    volume = jnp.sum(t, axis=axes)
    present = volume > 0
    raw = 1.0 / jnp.square(jnp.where(present, volume, 1.0))
    largest = jnp.max(jnp.where(present, raw, 0.0), axis=-1, keepdims=True)
    class_w = jnp.where(present, raw, jnp.where(largest > 0, largest, 1.0))
    intersection = jnp.sum(class_w * jnp.sum(p * t, axis=axes), axis=-1)
    union = jnp.sum(class_w * jnp.sum(p + t, axis=axes), axis=-1)
    loss = 1.0 - safe_ratio(2.0 * intersection + smooth, union + smooth)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)
