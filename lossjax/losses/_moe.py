"""Auxiliary losses of mixture-of-experts routers: load balancing and router z-loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lossjax.losses._inputs import (
    class_axis_inputs,
    example_mask,
    float_inputs,
    keep_entries,
    real_array,
)
from lossjax.losses._reduce import check_reduction, reduce_loss

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["load_balancing_loss", "router_z_loss"]


def load_balancing_loss(
    router_probs: ArrayLike,
    expert_indices: ArrayLike,
    *,
    num_experts: int,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """Switch Transformer's auxiliary load-balancing loss ``E · Σ_e f_e · P_e``.

    Over the ``T`` tokens of a group: ``f_e`` is the fraction of routing choices that went
    to expert ``e`` (with top-``k`` routing, each token's ``k`` choices all count, so
    ``Σ_e f_e = k``) and ``P_e`` the mean router probability of ``e``. Balanced routing
    gives ``k`` (1 for top-1); the gradient flows through ``P`` only (``f`` counts). This
    is the convention of Hugging Face's ``load_balancing_loss_func`` and MaxText's
    ``load_balance_loss`` (before their loss weight); some codebases divide by ``k``.

    Reference: Fedus, Zoph and Shazeer, "Switch Transformers" (JMLR 2022), eq. (4)–(6).

    Args:
      router_probs: ``[..., T, E]`` softmax outputs of the router. Leading axes are
        independent groups (layers, sequences); each gets its own loss.
      expert_indices: ``[..., T]`` (top-1) or ``[..., T, k]`` (top-k) chosen experts. An
        index outside ``[0, E)`` (which jit cannot reject) makes its group's loss NaN.
      num_experts: ``E``, equal to ``router_probs.shape[-1]``.
      weights: optional, broadcastable to the group shape ``router_probs.shape[:-2]``.
      where: optional boolean token mask ``[..., T]`` (e.g. not padding): masked tokens
        count in neither ``f`` nor ``P``; a group with no token left gives 0.
      reduction: over groups; a single ``[T, E]`` group gives a scalar whatever it is.

    Returns:
      Scalar for ``"mean"``/``"sum"``; ``router_probs.shape[:-2]`` for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> probs = jnp.array([[0.7, 0.3], [0.6, 0.4]])
      >>> lossjax.load_balancing_loss(probs, jnp.array([0, 0]), num_experts=2)
      Array(1.3, dtype=float32)
    """
    check_reduction(reduction)
    (probs,) = float_inputs(("router_probs", router_probs))
    idx = real_array("expert_indices", expert_indices)
    if probs.ndim < 2 or probs.shape[-1] != num_experts:
        raise ValueError(
            f"router_probs must have shape [..., T, num_experts={num_experts}], got "
            f"{tuple(probs.shape)} (expert_indices has shape {tuple(idx.shape)})")
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ValueError(f"expert_indices must be integer, got dtype {idx.dtype}")
    if idx.shape == probs.shape[:-1]:
        idx = idx[..., None]
    if idx.shape[:-1] != probs.shape[:-1]:
        raise ValueError(
            f"expert_indices has shape {tuple(idx.shape)}; it must be [..., T] or "
            f"[..., T, k] with router_probs' leading shape {tuple(probs.shape[:-1])}")
    chosen = jnp.sum(jax.nn.one_hot(idx, num_experts, dtype=probs.dtype), axis=-2)
    out_of_range = jnp.any((idx < 0) | (idx >= num_experts), axis=-1)
    keep = example_mask(where, probs.shape[:-1])
    if keep is None:
        tokens = jnp.asarray(probs.shape[-2], probs.dtype)
    else:
        probs, chosen = keep_entries(keep, probs, chosen, feature_axes=(-1,))
        out_of_range = out_of_range & keep
        tokens = jnp.sum(keep, axis=-1, keepdims=True).astype(probs.dtype)
    safe_tokens = jnp.maximum(tokens, 1.0)
    fraction = jnp.sum(chosen, axis=-2) / safe_tokens
    mean_prob = jnp.sum(probs, axis=-2) / safe_tokens
    loss = num_experts * jnp.sum(fraction * mean_prob, axis=-1)
    loss = jnp.where(jnp.any(out_of_range, axis=-1), jnp.nan, loss)
    return reduce_loss(loss, weights=weights, reduction=reduction)


def router_z_loss(
    router_logits: ArrayLike,
    *,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: str = "mean",
) -> Array:
    """ST-MoE's router z-loss ``(log Σ_e exp(x_e))²`` per token.

    Penalises large router logits, which round badly in low precision; ``"mean"`` over
    tokens is the paper's ``(1/B)·Σ_i (logsumexp_j x_ij)²``. MaxText and T5X's MoE
    multiply it by a weight (``1e-3`` in the paper).

    Reference: Zoph et al., "ST-MoE: Designing Stable and Transferable Sparse Expert
    Models" (2022), eq. (5).

    Args:
      router_logits: ``[..., E]`` router logits (before the softmax).
      axis: the expert axis.

    Returns:
      Scalar for ``"mean"``/``"sum"``; per token for ``"none"``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.router_z_loss(jnp.array([[0.0, 0.0], [1.0, 1.0]]))
      Array(1.6736, dtype=float32)
    """
    check_reduction(reduction)
    (x,) = class_axis_inputs(("router_logits", router_logits), axis=axis, where=where)
    loss = jnp.square(jax.nn.logsumexp(x, axis=-1))
    return reduce_loss(loss, weights=weights, where=where, reduction=reduction)
