"""Numerical building blocks shared across families."""

import jax
import jax.numpy as jnp


def abs_zero_subgradient(x: jax.Array) -> jax.Array:
    """``|x|`` whose gradient at ``x == 0`` is the subgradient 0 (``jnp.abs`` gives 1)."""
    return x * jnp.sign(x)
