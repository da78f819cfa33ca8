"""The one place where ``reduction``, ``weights`` and ``where`` are applied.

Every lossjax loss computes its unreduced value (elementwise for regression, per example
for classification) and hands it to :func:`reduce_loss`. Users build their own losses the
same way with :func:`elementwise_loss`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from lossjax.losses._inputs import (
    broadcast_mask,
    check_broadcastable_to,
    check_same_shape,  # noqa: F401  (re-exported: family modules predating _inputs use it)
    compute_dtype,
    float_inputs,
    keep_entries,
)

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

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> values = jnp.array([1.0, 2.0, 3.0, 4.0])
      >>> lossjax.reduce_loss(values, where=jnp.array([True, True, False, True]))  # 7 / 3
      Array(2.33333, dtype=float32)
      >>> lossjax.reduce_loss(values, weights=jnp.array([1.0, 1.0, 2.0, 2.0]), reduction="sum")
      Array(17., dtype=float32)
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


def elementwise_loss(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Turn ``fn(predictions, targets, **options) -> elementwise loss`` into a lossjax loss.

    The returned function has the lossjax signature
    ``loss(predictions, targets, *, **options, weights=None, where=None, reduction="mean")``
    (shown by ``help`` and IDEs): it checks that the two arrays are real and have the same
    shape, casts both to the compute dtype (float32 at least), replaces entries that
    ``where`` drops by 0 before ``fn`` sees them, evaluates ``fn`` and hands the result to
    :func:`reduce_loss`. ``options`` (``fn``'s keyword-only parameters) are passed on.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> @lossjax.elementwise_loss
      ... def quartic(p, t):
      ...     return (p - t) ** 4
      >>> quartic(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0]), reduction="sum")
      Array(17., dtype=float32)
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
        p, t = float_inputs(("predictions", predictions), ("targets", targets))
        if where is not None:
            p, t = keep_entries(broadcast_mask(where, p.shape), p, t)
        return reduce_loss(fn(p, t, **options), weights=weights, where=where, reduction=reduction)

    loss.__signature__ = _loss_signature(fn)  # pyright: ignore[reportAttributeAccessIssue]
    return loss


def _loss_signature(fn: Callable[..., Array]) -> inspect.Signature:
    """``fn``'s two arrays and keyword options, then ``weights``, ``where``, ``reduction``."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = list(inspect.signature(fn).parameters.values())
    arrays = [p.replace(annotation="ArrayLike") for p in params[:2]]
    options = [p.replace(kind=keyword) for p in params[2:]]
    common = [
        inspect.Parameter("weights", keyword, default=None, annotation="ArrayLike | None"),
        inspect.Parameter("where", keyword, default=None, annotation="ArrayLike | None"),
        inspect.Parameter("reduction", keyword, default="mean", annotation="str"),
    ]
    return inspect.Signature(arrays + options + common, return_annotation="Array")


__all__ = ["elementwise_loss", "reduce_loss"]
