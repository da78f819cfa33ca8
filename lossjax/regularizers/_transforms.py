"""Regularizing gradient transformations, chainable with ``optax.chain``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_non_negative
from lossjax.regularizers._mask import Mask, masked_map


def _require_params(params: Any, name: str) -> Any:
    if params is None:
        raise ValueError(f"{name} needs the parameters: call update(updates, state, params)")
    return params


class EmptyState(NamedTuple):
    pass


def add_decayed_weights(weight_decay: float, *, mask: Mask = None) -> optax.GradientTransformation:
    """``u ← u + wd·w`` on the selected leaves.

    Before an optimizer's scaling this is L2 regularisation (the gradient of
    ``wd·l2_penalty``); after it (as in AdamW) it is decoupled weight decay.
    """
    check_non_negative("weight_decay", weight_decay)

    def update(updates, state, params=None):
        params = _require_params(params, "add_decayed_weights")
        updates = masked_map(lambda u, w: (u + weight_decay * w).astype(u.dtype), mask,
                             updates, params)
        return updates, state

    return optax.GradientTransformation(lambda params: EmptyState(), update)


def add_l1(strength: float, *, mask: Mask = None) -> optax.GradientTransformation:
    """L1 subgradient: ``u ← u + λ·sign(w)`` on the selected leaves (never exact zeros)."""
    check_non_negative("strength", strength)

    def update(updates, state, params=None):
        params = _require_params(params, "add_l1")
        updates = masked_map(lambda u, w: (u + strength * jnp.sign(w)).astype(u.dtype), mask,
                             updates, params)
        return updates, state

    return optax.GradientTransformation(lambda params: EmptyState(), update)


class ProximalL1State(NamedTuple):
    count: jax.Array


def soft_threshold(x: jax.Array, threshold: jax.Array) -> jax.Array:
    """``sign(x)·max(|x| − threshold, 0)``, the proximal operator of ``threshold·|x|``."""
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


def proximal_l1(
    strength: float | Callable[[jax.Array], jax.Array], *, mask: Mask = None
) -> optax.GradientTransformation:
    """Proximal L1 step (ISTA), placed last in a chain: exact zeros.

    With incoming update ``u`` (already scaled by the learning rate) and parameters ``w``,
    the update moves ``w`` to ``sign(w + u)·max(|w + u| − s, 0)``. ``s`` is the threshold
    per step, i.e. learning rate × λ; a function ``step -> s`` follows a schedule.
    References: Daubechies et al. (2004); Beck & Teboulle, "FISTA" (2009).
    """
    if not callable(strength):
        check_non_negative("strength", strength)

    def init(params):
        del params
        return ProximalL1State(jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        params = _require_params(params, "proximal_l1")
        s = strength(state.count) if callable(strength) else strength

        def step(u, w):
            return (soft_threshold(w + u, s) - w).astype(u.dtype)

        return masked_map(step, mask, updates, params), ProximalL1State(state.count + 1)

    return optax.GradientTransformation(init, update)
