"""Penalties to add to a loss: ``loss + λ·penalty(params)``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lossjax._numerics import abs_zero_subgradient
from lossjax.regularizers._mask import Mask, masked_leaves


def _sum_over_leaves(fn, params: Any, mask: Mask) -> jax.Array:
    leaves = masked_leaves(mask, params)
    terms = [jnp.sum(fn(x.astype(jnp.promote_types(x.dtype, jnp.float32)))) for x in leaves]
    return sum(terms) if terms else jnp.zeros([], jnp.float32)


def l1_penalty(params: Any, *, mask: Mask = None) -> jax.Array:
    """L1 (lasso) penalty ``Σ|w|`` over the selected leaves; subgradient 0 at ``w = 0``.

    ``mask``: a pytree of bools (params' structure or a prefix) or ``params -> pytree``.
    """
    return _sum_over_leaves(abs_zero_subgradient, params, mask)


def l2_penalty(params: Any, *, mask: Mask = None) -> jax.Array:
    """L2 (ridge) penalty ``½Σw²`` over the selected leaves, so ``∇(λ·l2_penalty) = λ·w``."""
    return 0.5 * _sum_over_leaves(jnp.square, params, mask)
