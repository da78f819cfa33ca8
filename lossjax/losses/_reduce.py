"""The one place where ``reduction``, ``weights`` and ``where`` are applied.

Every lossjax loss computes its unreduced value (elementwise for regression, per example
for classification) and hands it to :func:`reduce_loss`. Users build their own losses the
same way with :func:`elementwise_loss`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is one of ``"mean"``, ``"sum"``, ``"none"``."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of 'mean', 'sum', 'none'; got {reduction!r}"
        )


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


def reduce_loss(
    values: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
    normalizer: ArrayLike | None = None,
) -> Array:
    """Weight, mask and reduce an unreduced loss.

    ``loss_i = weights_i * values_i`` where ``where_i`` else ``0``; then
    ``"none"``: the array; ``"sum"``: Σ loss_i; ``"mean"``: Σ loss_i / #{i : where_i}
    (the number of unmasked entries, not the sum of weights; an empty mask gives 0).

    Args:
      values: the unreduced loss, any shape.
      weights: optional, broadcastable to ``values.shape``.
      where: optional boolean mask, broadcastable to ``values.shape``. Masked entries are
        replaced (not multiplied) by 0, so a NaN there does not leak.
      reduction: ``"mean"``, ``"sum"`` or ``"none"``.
      normalizer: optional divisor for ``"mean"`` in place of the count (e.g. the sum of
        the target classes' weights, PyTorch's convention); a zero normalizer gives 0.

    Returns:
      A scalar, or an array of ``values.shape`` for ``"none"``; float32 at least.
    """
    check_reduction(reduction)
    values = jnp.asarray(values)
    dtype = compute_dtype(values.dtype)
    values = values.astype(dtype)
    if weights is not None:
        weights = jnp.asarray(weights)
        check_broadcastable_to("weights", weights.shape, values.shape)
        values = values * weights.astype(dtype)
    mask = None
    if where is not None:
        mask = broadcast_mask(where, values.shape)
        values = jnp.where(mask, values, jnp.zeros((), dtype))
    if reduction == "none":
        return values
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    if normalizer is not None:
        normalizer = jnp.asarray(normalizer, dtype)
        return jnp.where(normalizer == 0, 0.0, total / jnp.where(normalizer == 0, 1.0, normalizer))
    if mask is None:
        return total / max(values.size, 1)
    count = jnp.sum(mask, dtype=jnp.int32).astype(dtype)
    return total / jnp.maximum(count, 1)


def mask_inputs(mask: Array, *arrays: Array) -> tuple[Array, ...]:
    """Stop the gradient of masked-out entries of each input (same shape as ``mask``).

    The output-side ``where`` already sends a zero cotangent to masked entries, but a
    derivative that is infinite there would turn it into ``0 * inf = NaN``. Routing masked
    inputs through ``stop_gradient`` drops that product, so their gradient is exactly 0.
    """
    return tuple(jnp.where(mask, a, jax.lax.stop_gradient(a)) for a in arrays)


def elementwise_loss(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Turn ``fn(predictions, targets, **options) -> elementwise loss`` into a lossjax loss.

    The returned function has the lossjax signature
    ``loss(predictions, targets, *, weights=None, where=None, reduction="mean", **options)``:
    it checks that the two arrays have the same shape, casts both to the compute dtype
    (float32 at least), evaluates ``fn`` and hands the result to :func:`reduce_loss`.
    ``options`` are passed to ``fn`` as keyword arguments.

    Example::

        @lossjax.elementwise_loss
        def quartic(p, t):
            return (p - t) ** 4

        quartic(p, t, reduction="sum")
    """

    @functools.wraps(fn)
    def loss(
        predictions: ArrayLike,
        targets: ArrayLike,
        *,
        weights: ArrayLike | None = None,
        where: ArrayLike | None = None,
        reduction: str = "mean",
        **options: Any,
    ) -> Array:
        check_reduction(reduction)
        predictions = jnp.asarray(predictions)
        targets = jnp.asarray(targets)
        check_same_shape("predictions", predictions, "targets", targets)
        dtype = compute_dtype(predictions.dtype, targets.dtype)
        p, t = predictions.astype(dtype), targets.astype(dtype)
        if where is not None:
            p, t = mask_inputs(broadcast_mask(where, p.shape), p, t)
        return reduce_loss(fn(p, t, **options), weights=weights, where=where, reduction=reduction)

    return loss


__all__ = ["elementwise_loss", "reduce_loss"]
