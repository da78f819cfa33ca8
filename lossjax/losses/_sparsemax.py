"""Sparsemax: the Euclidean projection onto the simplex, its multiclass loss and the
binary sparsemax loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax._numerics import take_class
from lossjax.losses._inputs import (
    elementwise_inputs,
    float_inputs,
    normalize_axis,
    scores_and_labels,
    signed_labels,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["binary_sparsemax_loss", "sparsemax", "sparsemax_loss"]


def sparsemax(logits: ArrayLike, *, axis: int = -1) -> Array:
    """Euclidean projection of ``logits`` onto the probability simplex along ``axis``.

    ``sparsemax(z)_k = max(z_k − τ(z), 0)`` with ``τ`` chosen so the result sums to 1:
    sort ``z`` descending, the support size is ``k* = max{k : 1 + k·z_(k) > Σ_{j≤k} z_(j)}``
    and ``τ = (Σ_{j≤k*} z_(j) − 1) / k*``. Unlike softmax it gives exact zeros. Its
    derivative is written in closed form (a ``custom_jvp``, so ``jax.grad`` never
    differentiates the sort): on the support ``S``, ``dp = dz − mean_S(dz)``, else 0.
    Higher derivatives work (the Jacobian is piecewise constant).

    References: Martins & Astudillo, "From Softmax to Sparsemax" (ICML 2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.sparsemax(jnp.array([1.0, 0.5, -1.0]))  # k* = 2, τ = (1.5 − 1)/2 = 0.25
      Array([0.75, 0.25, 0. ], dtype=float32)
    """
    (z,) = float_inputs(("logits", logits))
    axis = normalize_axis(axis, z.shape, "logits")
    z = jnp.moveaxis(z, axis, -1)
    return jnp.moveaxis(_sparsemax_last_axis(z), -1, axis)


@jax.custom_jvp
def _sparsemax_last_axis(z: Array) -> Array:
    z_sorted = -jnp.sort(-z, axis=-1)
    cumulative = jnp.cumsum(z_sorted, axis=-1)
    ks = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    support_size = jnp.sum(1.0 + ks * z_sorted > cumulative, axis=-1, keepdims=True)
    support_sum = jnp.take_along_axis(cumulative, support_size - 1, axis=-1)
    tau = (support_sum - 1.0) / support_size.astype(z.dtype)
    return jax.nn.relu(z - tau)


@_sparsemax_last_axis.defjvp
def _sparsemax_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (z,), (dz,) = primals, tangents
    p = _sparsemax_last_axis(z)
    support = (p > 0).astype(z.dtype)
    mean_on_support = jnp.sum(dz * support, axis=-1, keepdims=True) / jnp.sum(
        support, axis=-1, keepdims=True)
    return p, support * (dz - mean_on_support)


def sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Multiclass sparsemax loss with integer labels, per example.

    With ``p = sparsemax(z)``:
    ``loss = ½(1 − ‖p‖²) + Σ_k p_k·(z_k − z_y) = −z_y + ½Σ_{k∈S}(z_k² − τ²) + ½``,
    the sparse analogue of softmax cross-entropy (its gradient is ``p − onehot(y)``; it is 0
    exactly when the label alone is in the support with margin). ``jax.grad`` gives that
    gradient. An out-of-range label gives NaN. Equals optax's ``multiclass_sparsemax_loss``.

    Args:
      logits: ``[..., K, ...]`` scores; the class axis is ``axis``.
      labels: integer ``[...]``, the logits' shape without ``axis``.

    References: Martins & Astudillo, "From Softmax to Sparsemax" (ICML 2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.sparsemax_loss(jnp.array([[1.0, 0.8, 0.0]]), jnp.array([0]))
      Array(0.16, dtype=float32)
    """
    check_reduction(reduction)
    z, safe_labels, out_of_range, mask = scores_and_labels(logits, labels, axis, where)
    p = sparsemax(z, axis=-1)
    # Outside the support p = 0; the double where keeps p·(z − z_y) finite at z = −inf.
    gap = jnp.where(p > 0, z - take_class(z, safe_labels)[..., None], 0.0)
    loss = 0.5 * (1.0 - jnp.sum(p * p, axis=-1)) + jnp.sum(p * gap, axis=-1)
    return reduce_loss(jnp.where(out_of_range, jnp.nan, loss), weights=weights, where=mask,
                       reduction=reduction)


def binary_sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Binary sparsemax loss, elementwise: ``sparse_plus(s)`` with ``s = −y·x``.

    ``y`` is the label as ±1 (labels in {0, 1} or {−1, 1}; a 0 is read as −1, as in
    :func:`~lossjax.hinge`) and ``sparse_plus(s)`` is 0 for ``s ≤ −1``, ``(s + 1)²/4`` for
    ``|s| < 1`` and ``s`` for ``s ≥ 1``: a smooth hinge that is exactly 0 once the logit is
    on the right side with margin 1, i.e. when the sparse sigmoid ``clip((x + 1)/2, 0, 1)``
    equals the label. This is optax's ``sparsemax_loss`` (optax's binary loss; lossjax's
    :func:`sparsemax_loss` is the multiclass one, optax's ``multiclass_sparsemax_loss``).

    Args:
      logits: float scores, any shape.
      labels: the same shape, in {0, 1} or {−1, 1}.

    Returns:
      Scalar for ``"mean"``/``"sum"``; the elementwise losses for ``"none"``.

    References: Blondel, Martins & Niculae, "Learning with Fenchel-Young Losses" (JMLR
    2020), §4.4.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.binary_sparsemax_loss(jnp.array([2.0, 0.0, -3.0]), jnp.array([1, 1, 1]),
      ...                               reduction="none")
      Array([0.  , 0.25, 3.  ], dtype=float32)
    """
    check_reduction(reduction)
    x, y = elementwise_inputs(("logits", logits), ("labels", labels), where=where)
    s = -signed_labels(y) * x
    loss = jnp.where(s >= 1.0, s, jnp.square(jnp.clip(s, -1.0, 1.0) + 1.0) / 4.0)
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)
