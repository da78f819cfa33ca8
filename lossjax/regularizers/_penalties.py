"""Penalties to add to a loss: ``loss + λ·penalty(params)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from lossjax._mask import Mask, masked_leaves
from lossjax._numerics import abs_zero_subgradient


def _sum_over_leaves(fn: Callable[[jax.Array], jax.Array], params: Any, mask: Mask) -> jax.Array:
    """``Σ_leaves Σ fn(leaf)`` over the selected leaves, accumulated in at least float32."""
    total = jnp.zeros([], jnp.float32)
    for leaf in masked_leaves(mask, params):
        leaf = jnp.asarray(leaf)
        total = total + jnp.sum(fn(leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32))))
    return total


def l1_penalty(params: Any, *, mask: Mask = None) -> jax.Array:
    """L1 (lasso) penalty ``Σ|w|`` over the leaves ``mask`` selects.

    Args:
      params: a pytree of arrays of any shapes.
      mask: ``None`` (all leaves), a pytree of bools with ``params``' structure or a prefix
        of it, or a function ``params -> pytree of bools``; unselected leaves add nothing and
        get a zero gradient.

    Returns:
      A scalar in at least float32 (float64 if a selected leaf is float64). Its gradient is
      ``sign(w)``, with the subgradient 0 at ``w = 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
      >>> lossjax.l1_penalty(params)
      Array(6., dtype=float32)
      >>> lossjax.l1_penalty(params, mask={"w": True, "b": False})  # skip the bias
      Array(3., dtype=float32)
    """
    return _sum_over_leaves(abs_zero_subgradient, params, mask)


def l2_penalty(params: Any, *, mask: Mask = None) -> jax.Array:
    """L2 (ridge) penalty ``½Σw²`` over the leaves ``mask`` selects.

    The ½ makes ``∇(λ·l2_penalty) = λ·w``: adding ``λ·l2_penalty(params)`` to the loss is
    the same as ``add_decayed_weights(λ)`` before the optimizer. ``mask`` and the result's
    dtype are as in :func:`l1_penalty`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([3.0])}
      >>> lossjax.l2_penalty(params)  # ½ (1 + 4 + 9)
      Array(7., dtype=float32)
      >>> print(jax.grad(lossjax.l2_penalty)(params)["w"])  # the gradient is w itself
      [ 1. -2.]
    """
    return 0.5 * _sum_over_leaves(jnp.square, params, mask)
