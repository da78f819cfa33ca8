"""Ranking losses: listwise (softmax over a list of items) and pairwise (margin)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._validation import check_non_negative
from lossjax.losses._inputs import (
    broadcast_mask,
    check_broadcastable_to,
    elementwise_inputs,
    example_mask,
    float_inputs,
    keep_entries,
    normalize_axis,
    signed_labels,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["margin_ranking", "ranking_softmax"]


def _item_array(name: str, value: ArrayLike | None, shape: tuple[int, ...], axis: int):
    if value is None:
        return None
    value = jnp.asarray(value)
    check_broadcastable_to(name, value.shape, shape)
    return jnp.moveaxis(jnp.broadcast_to(value, shape), axis, -1)


def ranking_softmax(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    item_mask: ArrayLike | None = None,
    item_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Listwise softmax ranking loss, per list: ``−Σ_i w_i·y_i·log softmax(s)_i``.

    The softmax runs over the valid items of each list (``item_mask``); ``y`` are graded
    relevance labels (>= 0, not normalised: a list whose labels are all 0 has loss 0 and
    still counts in the mean, as in optax). ``item_weights`` multiply the labels.

    The per-item arguments are separate from the per-list ``weights``/``where`` of the common
    contract: ``item_mask``/``item_weights`` broadcast to ``scores.shape`` (padding inside a
    list), ``weights``/``where`` to the list shape ``scores.shape`` without ``axis``. A list
    with no valid item is left out (loss 0, not counted in the mean, zero gradient): that is
    optax's ``ranking_softmax_loss(where=...)``, which this equals.

    Args:
      scores: ``[..., L, ...]`` item scores; the list axis is ``axis``.
      labels: the same shape, relevance of each item.
      where: per list (``scores.shape`` without ``axis``), or per item: a mask of the
        scores' rank is optax's ``where`` and acts as ``item_mask`` (both may be given).

    Returns:
      Scalar for ``"mean"``/``"sum"``; per-list losses for ``"none"``.

    References: Cao et al., "Learning to Rank: From Pairwise Approach to Listwise Approach"
    (ICML 2007); Bruch et al., "An Analysis of the Softmax Cross Entropy Loss for
    Learning-to-Rank with Binary Relevance" (ICTIR 2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.ranking_softmax(jnp.array([[2.0, 1.0, 0.0]]), jnp.array([[1.0, 0.0, 0.0]]))
      Array(0.4076, dtype=float32)
    """
    check_reduction(reduction)
    s, y = float_inputs(("scores", scores), ("labels", labels))
    if where is not None and jnp.ndim(where) == s.ndim:  # per item: optax's where
        where = broadcast_mask(where, s.shape)
        item_mask = where if item_mask is None else where & jnp.asarray(item_mask)
        where = None
    shape, dtype = tuple(s.shape), s.dtype
    axis = normalize_axis(axis, shape, "scores")
    s, y = jnp.moveaxis(s, axis, -1), jnp.moveaxis(y, axis, -1)
    where = example_mask(where, s.shape[:-1])
    s, y = keep_entries(where, s, y, feature_axes=(-1,))
    valid = _item_array("item_mask", item_mask, shape, axis)
    if valid is not None and valid.dtype != jnp.bool_:
        raise ValueError(f"item_mask must be a boolean array, got dtype {valid.dtype}")
    item_w = _item_array("item_weights", item_weights, shape, axis)
    if item_w is not None:
        y = y * item_w.astype(dtype)
    list_mask = None
    if valid is not None:
        list_has_items = jnp.any(valid, axis=-1, keepdims=True)
        # A list with no valid item is given finite stand-in scores and masked out below.
        s = jnp.where(valid, s, jnp.where(list_has_items, -jnp.inf, 0.0))
        y = jnp.where(valid, y, 0.0)
        list_mask = list_has_items[..., 0]
    log_probs = jax.nn.log_softmax(s, axis=-1)
    # A label-0 item at a −inf score adds exactly 0; elsewhere the plain product keeps the
    # derivative with respect to the labels (−log p, a label of 0 included).
    loss = -jnp.sum(y * jnp.where((y == 0) & jnp.isneginf(log_probs), 0.0, log_probs),
                    axis=-1)
    if where is not None:
        list_mask = where if list_mask is None else list_mask & where
    return reduce_loss(loss, weights=weights, where=list_mask, reduction=reduction)


def margin_ranking(
    scores1: ArrayLike,
    scores2: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Pairwise margin ranking loss, elementwise: ``max(0, −y·(s1 − s2) + margin)``.

    ``y = 1`` means ``s1`` should rank above ``s2``, ``y = −1`` the reverse; a 0 label is
    read as −1 (as in :func:`hinge`). PyTorch's ``MarginRankingLoss``. The subgradient at the
    hinge is 0. All three arrays have the same shape.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.margin_ranking(
      ...     jnp.array([1.0, 0.0]),
      ...     jnp.array([0.5, 0.5]),
      ...     jnp.array([1.0, 1.0]))
      Array(0.25, dtype=float32)
    """
    check_reduction(reduction)
    check_non_negative("margin", margin)
    s1, s2, y = elementwise_inputs(("scores1", scores1), ("scores2", scores2),
                                   ("labels", labels), where=where)
    loss = jax.nn.relu(margin - signed_labels(y) * (s1 - s2))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)
