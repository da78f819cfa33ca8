"""MARS: variance-reduced gradients (a scaled gradient difference added) fed to AdamW or Lion.

``c = g + γ·b1/(1 − b1)·(g − g_prev)``, clipped to ℓ2 norm ``max_norm`` per leaf, replaces
the gradient of the inner optimizer; the state is the inner optimizer's plus one buffer
holding the previous gradient.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask
from lossjax._validation import (
    check_in_range,
    check_non_negative,
    check_positive,
    concrete_value,
)
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_update,
    full_like,
    increment_count,
    per_leaf,
    upcast,
)
from lossjax.optimizers._transforms import scale_by_adam, scale_by_learning_rate
from lossjax.regularizers import add_cautious_decayed_weights, add_decayed_weights

_OPTIMIZERS = ("adamw", "lion")


class ScaleByMarsState(NamedTuple):
    """``last_grad``: the previous step's gradient (zeros before the first step)."""

    last_grad: Any


class MarsLionState(NamedTuple):
    """``count``: steps taken (int32); ``mu``: Lion's momentum of the corrected gradients."""

    count: jax.Array
    mu: Any


def _correction(gamma: float, b1: float, max_norm: float | None
                ) -> optax.GradientTransformation:
    """``c = g + γ·b1/(1 − b1)·(g − g_prev)``, then ``c ← c·max_norm/‖c‖₂`` where
    ``‖c‖₂ > max_norm`` (per leaf); ``γ = 0`` passes ``g`` through untouched."""
    scale = gamma * b1 / (1.0 - b1)
    off = concrete_value(gamma) == 0

    def leaf(g, last):
        g32 = upcast(g)
        c = g32 + scale * (g32 - upcast(last))
        if max_norm is not None:
            norm = jnp.sqrt(jnp.sum(jnp.real(c * jnp.conj(c))))
            c = c * jnp.where(norm > max_norm, max_norm / jnp.maximum(norm, 1e-30), 1.0)
        return as_update(c, g), g.astype(last.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        return ScaleByMarsState(jax.tree.map(full_like, params))

    def update(updates, state, params=None):
        del params
        if off:
            return updates, state
        corrected, last = apply((updates, state.last_grad))
        return corrected, ScaleByMarsState(last)

    return optax.GradientTransformation(init, update)


def _lion_direction(b1: float, b2: float, mu_dtype: Any) -> optax.GradientTransformation:
    def leaf(c, m):
        c32, m32 = upcast(c), upcast(m)
        direction = jnp.sign(b1 * m32 + (1.0 - b1) * c32)
        return as_update(direction, c), (b2 * m32 + (1.0 - b2) * c32).astype(m.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        return MarsLionState(jnp.zeros([], jnp.int32),
                             jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params))

    def update(updates, state, params=None):
        del params
        direction, mu = apply((updates, state.mu))
        return direction, MarsLionState(increment_count(state.count), mu)

    return optax.GradientTransformation(init, update)


def scale_by_mars(
    b1: float = 0.95,
    b2: float = 0.99,
    eps: float = 1e-8,
    gamma: float = 0.025,
    *,
    optimizer: Literal["adamw", "lion"] = "adamw",
    max_norm: float | None = 1.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    """MARS's direction: the corrected gradient fed to Adam's (or Lion's) direction.

    ``c = g + γ·b1/(1 − b1)·(g − g_prev)`` (``g_prev = 0`` at the first step), clipped to
    ``‖c‖₂ <= max_norm`` per leaf (``None``: no clipping); then ``optimizer="adamw"``:
    :func:`scale_by_adam`'s ``m̂/(√v̂ + eps)`` of ``c``; ``"lion"``: ``sign(b1·m +
    (1 − b1)·c)``, ``m ← b2·m + (1 − b2)·c``. ``γ = 0`` switches the correction and its
    clipping off: the direction is then Adam's (Lion's) bit for bit. State: the previous
    gradient, then the inner direction's state.

    References: Yuan et al., "MARS: Unleashing the Power of Variance Reduction for
    Training Large Models" (2024), arXiv:2411.10438 (the "approximate" MARS, with the
    previous step's gradient).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_mars()
      >>> direction, _ = tx.update(jnp.array([0.5, -0.5]), tx.init(jnp.zeros(2)))
      >>> direction
      Array([ 1., -1.], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("gamma", gamma)
    if max_norm is not None:
        check_positive("max_norm", max_norm)
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
    inner = (scale_by_adam(b1, b2, eps, mu_dtype=mu_dtype) if optimizer == "adamw"
             else _lion_direction(b1, b2, mu_dtype))
    return optax.chain(_correction(gamma, b1, max_norm), inner)


def mars(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.95,
    b2: float = 0.99,
    eps: float = 1e-8,
    gamma: float = 0.025,
    weight_decay: float = 0.0,
    mask: Mask = None,
    *,
    optimizer: Literal["adamw", "lion"] = "adamw",
    max_norm: float | None = 1.0,
    cautious_weight_decay: bool = False,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    """MARS: ``w ← w − lr·(d + wd·w)``, ``d`` from :func:`scale_by_mars` (MARS-AdamW by
    default, MARS-Lion with ``optimizer="lion"``).

    ``gamma = 0`` is :func:`adamw` (with these ``b1``, ``b2``, ``eps``) bit for bit. Memory:
    AdamW's two moments plus one gradient buffer (Lion: one moment plus the buffer).
    ``cautious_weight_decay``: decay only where ``d`` and ``w`` agree in sign
    (:func:`add_cautious_decayed_weights`). The reference trains 1-D parameters with plain
    AdamW by default; here every leaf gets the correction (give biases another group with
    :func:`partition` to match).

    References: Yuan et al., "MARS: Unleashing the Power of Variance Reduction for
    Training Large Models" (2024), arXiv:2411.10438.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.mars(0.1)
      >>> w = jnp.zeros(2)
      >>> u, state = opt.update(jnp.array([0.5, -0.5]), opt.init(w), w)
      >>> u
      Array([-0.1,  0.1], dtype=float32)
    """
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)
    check_non_negative("weight_decay", weight_decay)
    decay = (add_cautious_decayed_weights(weight_decay, mask=mask) if cautious_weight_decay
             else add_decayed_weights(weight_decay, mask=mask))
    return optax.chain(
        scale_by_mars(b1, b2, eps, gamma, optimizer=optimizer, max_norm=max_norm,
                      mu_dtype=mu_dtype),
        decay, scale_by_learning_rate(learning_rate))

