"""The input prologue and the masking policy shared by every lossjax loss.

A loss body starts from arrays this module has checked and prepared:

* :func:`float_inputs` converts, rejects complex dtypes, checks that paired arrays have
  the same shape (the error names both shapes), and casts to the compute dtype (float32
  at least, float64 when a float64 input is given; half inputs are computed in float32).
* :func:`integer_labels`, :func:`label_validity`, :func:`class_weight_vector` and
  :func:`signed_labels` prepare class indices, per-class weights and ±1 labels.
* :func:`class_axis_masks` tells optax's per-class ``where`` (the scores' rank) from a
  per-example one; :func:`masked_class_inputs` and :func:`scores_labels_and_class_mask`
  are the prologues of the losses that take both.
* :func:`keep_entries` is the masking policy. Entries that ``where`` (or ``ignore_index``)
  drops are *replaced* by a safe value before any arithmetic (the double-``where`` rule):
  the loss never sees them, so a NaN or inf there reaches neither the value nor the
  gradient, which is exactly 0 (the VJP of ``jnp.where`` passes no cotangent to the branch
  it did not select). :func:`~lossjax.losses._reduce.reduce_loss` then leaves those
  entries out of the reduction.

Families import this module, :mod:`lossjax.losses._reduce` and :mod:`lossjax._numerics`,
never each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def compute_dtype(*dtypes: Any) -> np.dtype:
    """The dtype arithmetic runs in: float32 at least, float64 if a float64 input is given.

    Integer and boolean dtypes (labels) do not take part.
    """
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    return jnp.result_type(jnp.float32, *floats)


def check_same_shape(name_a: str, a: Array, name_b: str, b: Array) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have exactly the same shape.

    lossjax never broadcasts a prediction against its target: ``(n,)`` against ``(n, 1)``
    would silently become ``(n, n)``.
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
            "they must be equal (lossjax does not broadcast them). Reshape one explicitly."
        )


def check_broadcastable_to(name: str, shape: Sequence[int], target: Sequence[int]) -> None:
    """Raise ``ValueError`` unless an array of ``shape`` broadcasts to ``target`` unchanged."""
    shape, target = tuple(shape), tuple(target)
    try:
        out = np.broadcast_shapes(shape, target)
    except ValueError:
        out = None
    if out != target:
        raise ValueError(
            f"{name} has shape {shape}, which does not broadcast to the unreduced loss "
            f"shape {target}"
        )


def broadcast_mask(where: ArrayLike, shape: Sequence[int]) -> Array:
    """Check ``where`` is boolean and broadcastable to ``shape``; return it broadcast."""
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise ValueError(f"where must be a boolean array, got dtype {where.dtype}")
    check_broadcastable_to("where", where.shape, shape)
    return jnp.broadcast_to(where, tuple(shape))



def real_array(name: str, value: ArrayLike) -> Array:
    """``value`` as an array; ``ValueError`` for a complex dtype (no loss is defined on one,
    and a silent cast would drop the imaginary part)."""
    array = jnp.asarray(value)
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise ValueError(
            f"{name} has complex dtype {array.dtype}; losses take real arrays "
            f"(pass {name}.real or jnp.abs({name}) explicitly)"
        )
    return array


def float_inputs(*named: tuple[str, ArrayLike], same_shape: bool = True) -> tuple[Array, ...]:
    """The named arrays, real, cast to one compute dtype (float32 at least).

    With ``same_shape`` every array must have the first one's shape: lossjax never
    broadcasts a prediction against its target (``(n,)`` against ``(n, 1)`` would silently
    become ``(n, n)``); the ``ValueError`` names both arrays and both shapes.
    """
    arrays = [real_array(name, value) for name, value in named]
    if same_shape:
        for (name, _), array in zip(named[1:], arrays[1:], strict=True):
            check_same_shape(named[0][0], arrays[0], name, array)
    dtype = compute_dtype(*(a.dtype for a in arrays))
    return tuple(a.astype(dtype) for a in arrays)


def normalize_axis(axis: int, shape: Sequence[int], name: str) -> int:
    """``axis`` as a non-negative index into ``shape``; ``ValueError`` when out of range."""
    ndim = len(shape)
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis!r} is out of range for {name} of shape {tuple(shape)}")
    return axis % ndim


def check_per_example(
    labels: Array, shape: Sequence[int], axis: int, name: str, what: str = "labels"
) -> None:
    """``labels`` must have ``shape`` without ``axis`` (one entry per example)."""
    shape = tuple(shape)
    expected = shape[:axis] + shape[axis + 1:]
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"{what} has shape {tuple(labels.shape)} but {name} has shape {shape}; {what} "
            f"must have {name}'s shape without axis {axis}: {expected}"
        )


def integer_labels(
    labels: ArrayLike, scores: Array, axis: int, name: str = "logits"
) -> tuple[Array, int]:
    """Check integer class indices of ``scores``' shape without ``axis``; return
    ``(labels, axis)`` with ``axis`` non-negative."""
    labels = real_array("labels", labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"labels must be integer class indices, got dtype {labels.dtype}; "
            "for one-hot or soft labels use softmax_cross_entropy"
        )
    axis = normalize_axis(axis, scores.shape, name)
    check_per_example(labels, scores.shape, axis, name)
    return labels, axis


def label_validity(
    labels: Array, num_classes: int, ignore_index: int | None = None
) -> tuple[Array, Array, Array]:
    """Split integer labels into ``(safe_labels, kept, out_of_range)``.

    ``kept`` is False for ``ignore_index``; ``out_of_range`` marks other labels outside
    ``[0, num_classes)`` (their loss becomes NaN: jit cannot raise); ``safe_labels``
    replaces both by 0 so that gathers stay in bounds.
    """
    kept = jnp.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    in_range = (labels >= 0) & (labels < num_classes)
    out_of_range = kept & ~in_range
    safe = jnp.where(kept & in_range, labels, 0)
    return safe, kept, out_of_range


def scores_and_labels(
    scores: ArrayLike, labels: ArrayLike, axis: int, where: ArrayLike | None,
    ignore_index: int | None = None, name: str = "logits",
) -> tuple[Array, Array, Array, Array | None]:
    """The prologue of an integer-label loss.

    Returns ``(scores, safe_labels, out_of_range, mask)``: float scores with the class
    ``axis`` moved last, masked examples' scores replaced by 0; labels made safe for
    gathers (see :func:`label_validity`); the per-example mask combining ``where`` and
    ``ignore_index`` (None when neither is given).
    """
    return scores_labels_and_class_mask(
        scores, labels, axis, where, ignore_index, name, per_class=False)[:4]


def scores_labels_and_class_mask(
    scores: ArrayLike, labels: ArrayLike, axis: int, where: ArrayLike | None,
    ignore_index: int | None = None, name: str = "logits", *, per_class: bool = True,
) -> tuple[Array, Array, Array, Array | None, Array | None]:
    """:func:`scores_and_labels` that also takes a per-class ``where`` (same rank as the
    scores, see :func:`class_axis_masks`); returns the class mask (``[..., K]``, all True
    in dropped examples; None for a per-example ``where``) last."""
    (scores,) = float_inputs((name, scores))
    labels, axis = integer_labels(labels, scores, axis, name)
    if per_class:
        mask, class_mask = class_axis_masks(where, scores.shape, axis)
    else:
        mask, class_mask = example_mask(where, labels.shape), None
    scores = jnp.moveaxis(scores, axis, -1)
    safe, kept, out_of_range = label_validity(labels, scores.shape[-1], ignore_index)
    if ignore_index is not None:
        mask = kept if mask is None else mask & kept
    (scores,) = keep_entries(mask, scores, feature_axes=(-1,))
    if class_mask is not None and mask is not None:
        class_mask = class_mask | ~mask[..., None]
    return scores, safe, out_of_range, mask, class_mask


def class_weight_vector(class_weights: ArrayLike, num_classes: int, dtype) -> Array:
    """``class_weights`` as a ``[K]`` array of ``dtype``; ``ValueError`` for another shape."""
    class_weights = real_array("class_weights", class_weights).astype(dtype)
    if class_weights.shape != (num_classes,):
        raise ValueError(
            f"class_weights has shape {class_weights.shape}; expected ({num_classes},), "
            "one weight per class"
        )
    return class_weights


def signed_labels(labels: Array) -> Array:
    """Binary labels as ±1: a 0 label is read as −1, anything else is kept."""
    return jnp.where(labels == 0, -1.0, labels)


def example_mask(where: ArrayLike | None, shape: Sequence[int]) -> Array | None:
    """``where`` checked (boolean, broadcastable to the per-example ``shape``) and
    broadcast to it; None when not given."""
    return None if where is None else broadcast_mask(where, shape)


def keep_entries(
    mask: Array | None, *arrays: Array, feature_axes: Sequence[int] = (), fill: float = 0.0
) -> tuple[Array, ...]:
    """The arrays with the entries of masked-out examples replaced by ``fill``.

    ``mask`` has the per-example shape; ``feature_axes`` are the array axes it lacks (e.g.
    the class axis, ``-1``), where it is expanded and broadcast. This is the double-``where``
    rule: nothing downstream sees the replaced values, and their gradient is exactly 0.
    """
    if mask is None:
        return arrays
    out = []
    for array in arrays:
        full = mask
        for axis in sorted(a % array.ndim for a in feature_axes):
            full = jnp.expand_dims(full, axis)
        full = jnp.broadcast_to(full, array.shape)
        out.append(jnp.where(full, array, jnp.asarray(fill, array.dtype)))
    return tuple(out)


def elementwise_inputs(
    *named: tuple[str, ArrayLike], where: ArrayLike | None
) -> tuple[Array, ...]:
    """Same-shape float arrays of an elementwise loss, entries ``where`` drops set to 0."""
    arrays = float_inputs(*named)
    return keep_entries(example_mask(where, arrays[0].shape), *arrays)


def class_axis_inputs(
    *named: tuple[str, ArrayLike], axis: int, where: ArrayLike | None
) -> tuple[Array, ...]:
    """Same-shape float arrays with a class (or feature) ``axis``, moved last; the examples
    ``where`` drops (``where`` has the shape without ``axis``) are set to 0."""
    arrays = float_inputs(*named)
    axis = normalize_axis(axis, arrays[0].shape, named[0][0])
    arrays = tuple(jnp.moveaxis(a, axis, -1) for a in arrays)
    return keep_entries(example_mask(where, arrays[0].shape[:-1]), *arrays, feature_axes=(-1,))


def class_axis_masks(
    where: ArrayLike | None, shape: Sequence[int], axis: int
) -> tuple[Array | None, Array | None]:
    """Split ``where`` by rank into ``(example_mask, class_mask)``.

    The two meanings of ``where`` on a loss with a class (feature) axis are told apart by
    rank. A mask of the scores' rank masks individual classes (optax's meaning: invalid
    actions, vocabulary entries); it is broadcast to ``shape``, its class ``axis`` moved
    last, and an example counts when it keeps at least one class. Any other mask is
    per-example (broadcastable to ``shape`` without ``axis``) and ``class_mask`` is None.
    """
    if where is None:
        return None, None
    where = jnp.asarray(where)
    shape = tuple(shape)
    if where.ndim != len(shape):
        return example_mask(where, shape[:axis] + shape[axis + 1:]), None
    class_mask = jnp.moveaxis(broadcast_mask(where, shape), axis, -1)
    return jnp.any(class_mask, axis=-1), class_mask


def masked_class_inputs(
    *named: tuple[str, ArrayLike], axis: int, where: ArrayLike | None
) -> tuple[tuple[Array, ...], Array | None, Array | None]:
    """:func:`class_axis_inputs` for a loss that also takes a per-class ``where``.

    Returns ``(arrays, example_mask, class_mask)``: the arrays with the class ``axis``
    moved last and dropped examples set to 0; the per-example mask to reduce with; the
    per-class mask (``[..., K]``, None for a per-example ``where``). In an example that
    keeps no class, ``class_mask`` is all True (the example is dropped whole), so a
    normaliser over the kept classes is never empty. Entries the class mask drops still
    hold the caller's values: the loss replaces them by its own neutral value.
    """
    arrays = float_inputs(*named)
    axis = normalize_axis(axis, arrays[0].shape, named[0][0])
    examples, classes = class_axis_masks(where, arrays[0].shape, axis)
    arrays = tuple(jnp.moveaxis(a, axis, -1) for a in arrays)
    arrays = keep_entries(examples, *arrays, feature_axes=(-1,))
    if classes is not None and examples is not None:
        classes = classes | ~examples[..., None]
    return arrays, examples, classes


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
