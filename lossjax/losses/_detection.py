"""Bounding-box regression losses: IoU, generalized, distance and complete IoU.

Boxes are ``[..., 4]`` arrays, ``(x1, y1, x2, y2)`` corners (``box_format="xyxy"``) or
``(cx, cy, w, h)`` (``box_format="cxcywh"``); a valid box has ``x1 ≤ x2`` and ``y1 ≤ y2``
(``w, h ≥ 0``). The unreduced loss has the boxes' shape without the last axis.

The formulas, and where ``eps`` enters them, follow ``torchvision.ops``
(``generalized_box_iou_loss``, ``distance_box_iou_loss``, ``complete_box_iou_loss``), so a
PyTorch detector ports with the same numbers. Unlike torchvision the default reduction is
``"mean"`` (lossjax's convention; torchvision's is ``"none"``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossjax._validation import check_non_negative
from lossjax.losses._inputs import example_mask, float_inputs
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["ciou_loss", "diou_loss", "giou_loss", "iou_loss"]

BOX_FORMATS = ("xyxy", "cxcywh")


class _Overlap(NamedTuple):
    """The pieces every IoU loss is built from (per box pair)."""

    iou: Array        # intersection / (union + eps)
    enclosing: tuple[Array, Array, Array, Array]  # smallest box holding both, xyxy
    pred: tuple[Array, Array, Array, Array]
    target: tuple[Array, Array, Array, Array]
    union: Array


def _as_corners(boxes: Array, box_format: str) -> tuple[Array, Array, Array, Array]:
    # One split (its gradient is one concatenate) rather than four slices (four padded
    # cotangents added up, which XLA on CPU fuses into a slower loop).
    x, y, u, v = (c[..., 0] for c in jnp.split(boxes, 4, axis=-1))
    if box_format == "xyxy":
        return x, y, u, v
    return x - 0.5 * u, y - 0.5 * v, x + 0.5 * u, y + 0.5 * v


def _checked_boxes(
    pred_boxes: ArrayLike, target_boxes: ArrayLike, box_format: str, eps: float,
    where: ArrayLike | None,
) -> tuple[Array, Array]:
    """Both box arrays checked, in the compute dtype, masked pairs replaced by unit boxes."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of 'xyxy', 'cxcywh'; got {box_format!r}")
    check_non_negative("eps", eps)
    pred, target = float_inputs(("pred_boxes", pred_boxes), ("target_boxes", target_boxes))
    if pred.ndim < 1 or pred.shape[-1] != 4:
        raise ValueError(f"pred_boxes and target_boxes must have shape [..., 4], got "
                         f"{tuple(pred.shape)}")
    keep = example_mask(where, pred.shape[:-1])
    if keep is not None:
        # A masked pair becomes two identical unit boxes before any arithmetic (zeros
        # would be two empty boxes, 0/0 with eps = 0), so a NaN there reaches neither the
        # value nor the gradient.
        unit = jnp.asarray([0.0, 0.0, 1.0, 1.0] if box_format == "xyxy"
                           else [0.5, 0.5, 1.0, 1.0], pred.dtype)
        pred, target = (jnp.where(keep[..., None], x, unit) for x in (pred, target))
    return pred, target


def _overlap(pred: Array, target: Array, box_format: str, eps: float) -> _Overlap:
    p, t = _as_corners(pred, box_format), _as_corners(target, box_format)
    inter_w = jnp.maximum(jnp.minimum(p[2], t[2]) - jnp.maximum(p[0], t[0]), 0.0)
    inter_h = jnp.maximum(jnp.minimum(p[3], t[3]) - jnp.maximum(p[1], t[1]), 0.0)
    intersection = inter_w * inter_h
    union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - intersection
    enclosing = (jnp.minimum(p[0], t[0]), jnp.minimum(p[1], t[1]),
                 jnp.maximum(p[2], t[2]), jnp.maximum(p[3], t[3]))
    return _Overlap(intersection / (union + eps), enclosing, p, t, union)


def _center_distance_penalty(o: _Overlap, eps: float) -> Array:
    """``ρ²(centres) / (c² + eps)``, ``c`` the enclosing box's diagonal (DIoU's penalty)."""
    x1, y1, x2, y2 = o.enclosing
    diagonal = (x2 - x1) ** 2 + (y2 - y1) ** 2 + eps
    dx = 0.5 * (o.pred[0] + o.pred[2]) - 0.5 * (o.target[0] + o.target[2])
    dy = 0.5 * (o.pred[1] + o.pred[3]) - 0.5 * (o.target[1] + o.target[3])
    return (dx**2 + dy**2) / diagonal


def _aspect_angle(box: tuple[Array, Array, Array, Array]) -> Array:
    """``atan(w / h)`` as ``atan2(w, h)``: π/2 for a zero-height box, 0 (with a zero
    gradient) for a point box, where ``atan(0/0)`` would be NaN."""
    w, h = box[2] - box[0], box[3] - box[1]
    point = (w == 0) & (h == 0)
    angle = jnp.arctan2(jnp.where(point, 0.0, w), jnp.where(point, 1.0, h))
    return jnp.where(point, 0.0, angle)


def _loss(kind: str, pred_boxes: ArrayLike, target_boxes: ArrayLike, box_format: str,
          eps: float, weights: ArrayLike | None, where: ArrayLike | None,
          reduction: str) -> Array:
    check_reduction(reduction)
    pred, target = _checked_boxes(pred_boxes, target_boxes, box_format, eps, where)
    o = _overlap(pred, target, box_format, eps)
    loss = 1.0 - o.iou
    if kind == "giou":
        x1, y1, x2, y2 = o.enclosing
        area = (x2 - x1) * (y2 - y1)
        loss = loss + (area - o.union) / (area + eps)
    elif kind in ("diou", "ciou"):
        loss = loss + _center_distance_penalty(o, eps)
    if kind == "ciou":
        v = (4.0 / math.pi**2) * (_aspect_angle(o.target) - _aspect_angle(o.pred)) ** 2
        alpha = jax.lax.stop_gradient(v / (1.0 - o.iou + v + eps))
        loss = loss + alpha * v
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)


def iou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """IoU loss ``1 − IoU``, ``IoU = |P ∩ T| / (|P ∪ T| + eps)``, per box pair.

    Reference: Yu et al., "UnitBox: An Advanced Object Detection Network" (2016); the
    ``eps`` placement is torchvision's (``torchvision.ops`` ``_loss_inter_union``).
    Disjoint boxes give 1 with a zero gradient (use ``giou_loss`` or ``diou_loss`` for a
    signal there); a pair of zero-area boxes gives 1, finite, thanks to ``eps``.

    Args:
      pred_boxes: ``[..., 4]`` predicted boxes.
      target_boxes: ``[..., 4]`` target boxes, the same shape.
      box_format: ``"xyxy"`` (corners) or ``"cxcywh"`` (centre, width, height).
      eps: added to the union (and, in the other IoU losses, to the other denominators).

    Returns:
      Scalar for ``"mean"``/``"sum"``; ``pred_boxes.shape[:-1]`` for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> p = jnp.array([[0.0, 0.0, 2.0, 2.0]])
      >>> t = jnp.array([[1.0, 1.0, 3.0, 3.0]])
      >>> lossjax.iou_loss(p, t)  # IoU = 1 / 7
      Array(0.857143, dtype=float32)
    """
    return _loss("iou", pred_boxes, target_boxes, box_format, eps, weights, where, reduction)


def giou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Generalized IoU loss ``1 − IoU + (|C| − |P ∪ T|) / (|C| + eps)``.

    ``C`` is the smallest box enclosing both. In ``[0, 2]``; unlike ``iou_loss`` it still
    decreases as disjoint boxes approach each other.

    Reference: Rezatofighi et al., "Generalized Intersection over Union" (CVPR 2019);
    torchvision ``ops.generalized_box_iou_loss`` (same formula and ``eps``).

    Args:
      pred_boxes, target_boxes, box_format, eps: as in :func:`iou_loss`.

    Returns:
      Scalar for ``"mean"``/``"sum"``; ``pred_boxes.shape[:-1]`` for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> p = jnp.array([[0.0, 0.0, 1.0, 1.0]])
      >>> t = jnp.array([[2.0, 0.0, 3.0, 1.0]])
      >>> lossjax.giou_loss(p, t)  # disjoint: 1 − 0 + (3 − 2) / 3
      Array(1.333333, dtype=float32)
    """
    return _loss("giou", pred_boxes, target_boxes, box_format, eps, weights, where, reduction)


def diou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Distance IoU loss ``1 − IoU + ρ² / (c² + eps)``.

    ``ρ`` is the distance between the boxes' centres, ``c`` the diagonal of the smallest
    enclosing box.

    Reference: Zheng et al., "Distance-IoU Loss" (AAAI 2020); torchvision
    ``ops.distance_box_iou_loss`` (same formula and ``eps``).

    Args:
      pred_boxes, target_boxes, box_format, eps: as in :func:`iou_loss`.

    Returns:
      Scalar for ``"mean"``/``"sum"``; ``pred_boxes.shape[:-1]`` for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> p = jnp.array([[0.0, 0.0, 1.0, 1.0]])
      >>> t = jnp.array([[2.0, 0.0, 3.0, 1.0]])
      >>> lossjax.diou_loss(p, t)  # 1 − 0 + 2² / (3² + 1²)
      Array(1.4, dtype=float32)
    """
    return _loss("diou", pred_boxes, target_boxes, box_format, eps, weights, where, reduction)


def ciou_loss(
    pred_boxes: ArrayLike,
    target_boxes: ArrayLike,
    *,
    box_format: str = "xyxy",
    eps: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Complete IoU loss ``1 − IoU + ρ² / (c² + eps) + α·v``.

    ``v = (4/π²)·(atan(w_t/h_t) − atan(w_p/h_p))²`` compares aspect ratios and
    ``α = v / (1 − IoU + v + eps)`` is held constant (no gradient flows through it), as in
    torchvision. ``atan(w/h)`` is evaluated as ``atan2(w, h)``: equal for valid boxes,
    and finite (π/2) for a zero-height box; a point box (``w = h = 0``) counts as angle 0.

    Reference: Zheng et al., "Enhancing Geometric Factors in Model Learning and Inference
    for Object Detection and Instance Segmentation" (2021); torchvision
    ``ops.complete_box_iou_loss``.

    Args:
      pred_boxes, target_boxes, box_format, eps: as in :func:`iou_loss`.

    Returns:
      Scalar for ``"mean"``/``"sum"``; ``pred_boxes.shape[:-1]`` for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> p = jnp.array([[0.0, 0.0, 2.0, 1.0]])
      >>> t = jnp.array([[0.0, 0.0, 1.0, 1.0]])
      >>> lossjax.ciou_loss(p, t)
      Array(0.553248, dtype=float32)
    """
    return _loss("ciou", pred_boxes, target_boxes, box_format, eps, weights, where, reduction)
