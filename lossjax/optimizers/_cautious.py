"""Cautious optimizers: keep only the coordinates of a step that agree with the gradient."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from lossjax.optimizers._machinery import as_update, is_float0, upcast


def _cautious_leaf(u: jax.Array, g: jax.Array) -> jax.Array:
    if is_float0(g) or is_float0(u):
        return u
    u32 = upcast(u)
    # a descent coordinate: the step opposes g (Re(u·ḡ) for complex leaves)
    keep = jnp.real(u32 * jnp.conj(upcast(g))) < 0
    kept = jnp.sum(keep)
    scale = keep.size / jnp.maximum(kept, 1).astype(u32.dtype)
    return as_update(jnp.where(keep, u32 * scale, 0), u)


def cautious(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """The cautious form of any optimizer: drop the coordinates that would go uphill.

    With ``u`` the inner optimizer's update (the step added to the parameters) and ``g``
    the gradient, per leaf::

        φ = 𝟙[u ⊙ g < 0],   u ← u ⊙ φ · n/max(Σφ, 1)     (n: the leaf's size)

    so every step satisfies ``⟨u, g⟩ <= 0`` (``Re(u·ḡ)`` for complex leaves), and the kept
    coordinates are scaled up to keep the step's average size. Where every coordinate
    agrees the step is the inner one bit for bit (the factor is exactly 1). The state is
    ``inner``'s.

    References: Liang et al., "Cautious Optimizers: Improving Training with One Line of
    Code" (2024), arXiv:2411.16085 (its reference code scales by ``n/(Σφ + 1)``; here
    ``n/max(Σφ, 1)``, so that an all-agreeing step is unchanged).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.cautious(lossjax.sgd(1.0, momentum=0.9))
      >>> w = jnp.zeros(2)
      >>> _, state = opt.update(jnp.array([1.0, 1.0]), opt.init(w), w)
      >>> u, _ = opt.update(jnp.array([1.0, -0.5]), state, w)
      >>> u   # the second coordinate would climb: zeroed; the first doubled
      Array([-3.8,  0. ], dtype=float32)
    """

    def update(updates: Any, state: Any, params: Any = None, **extra: Any):
        new, state = inner.update(updates, state, params, **extra) if extra else \
            inner.update(updates, state, params)
        return jax.tree.map(_cautious_leaf, new, updates), state

    return optax.GradientTransformationExtraArgs(inner.init, update)
