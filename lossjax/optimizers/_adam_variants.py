"""Adam variants from optax.contrib: ACProp and Simplified AdEMAMix.

ACProp divides the gradient by the *previous* step's centred second moment (asynchronous
update); Simplified AdEMAMix replaces Adam's first moment by an undamped sum of gradients
plus ``α`` times the current gradient. Same arguments, defaults, numbers and state as
``optax.contrib.acprop`` / ``simplified_ademamix`` (0.2.8). Both take ``nu_dtype=`` (and
Simplified AdEMAMix ``mu_dtype=``) to store moments in a narrower dtype; the arithmetic
runs in float32 at least.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_update,
    bias_correction_factor,
    check_moment_hyperparameters,
    full_like,
    increment_count,
    per_leaf,
    scalar_dtype,
    upcast,
    weight_decay_parts,
)
from lossjax.optimizers._transforms import scale_by_learning_rate

Array = jax.Array
Mask = Any | Callable[[Any], Any] | None


def _zeros(params: Any, dtype: Any = None) -> Any:
    return jax.tree.map(lambda p: full_like(p, dtype=dtype), params)


# ------------------------------------------------------------------------------ ACProp


class ScaleByAcpropState(NamedTuple):
    """``count`` (int32); ``mu``: EMA of ``g``; ``nu``: EMA of ``(g − m)²`` (the fields of
    optax's ``ScaleByBeliefState``, which optax's ACProp uses)."""

    count: Array
    mu: Any
    nu: Any


def scale_by_acprop(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """ACProp's direction: ``g_t / (√ŝ_{t−1} + eps)``, the denominator one step behind::

        m ← b1·m + (1 − b1)·g,   s ← b2·s + (1 − b2)·(g − m_old)² + eps_root,
        ŝ_{t−1} = s_{t−1}/(1 − b2^{t−1})  (1 at the first step)

    (``m_old`` is the moment before this step's update, as optax).

    References: Zhuang et al., "Momentum Centering and Asynchronous Update for Adaptive
    Gradient Methods" (2021).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_acprop(eps=0.0)
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]  # ŝ₀ = 1
      Array([ 0.5, -2. ], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps, eps_root)

    def leaf(g, m, s, correction, first):
        g32, m_old, s_old = upcast(g), upcast(m), upcast(s)
        correction = correction.astype(g32.dtype)
        m32 = b1 * m_old + (1.0 - b1) * g32
        error = g32 - m_old
        s32 = b2 * s_old + (1.0 - b2) * (error * error) + eps_root
        s_hat = jnp.where(first, 1.0, s_old / correction)
        direction = g32 / (jnp.sqrt(s_hat) + eps)
        return as_update(direction, g), m32.astype(m.dtype), s32.astype(s.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByAcpropState(jnp.zeros([], jnp.int32), _zeros(params, mu_dtype),
                                  _zeros(params, nu_dtype))

    def update(updates, state, params=None):
        del params
        first = state.count == 0
        t = jnp.where(first, 1, state.count)
        correction = bias_correction_factor(b2, t, scalar_dtype(updates))
        out, mu, nu = apply((updates, state.mu, state.nu), (correction, first))
        return out, ScaleByAcpropState(increment_count(state.count), mu, nu)

    return optax.GradientTransformation(init, update)


def acprop(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    weight_decay: float = 0.0,
    mask: Mask = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """ACProp: ``w ← w − lr·(g/(√ŝ_{t−1} + eps) + wd·w)`` (:func:`scale_by_acprop`).

    References: Zhuang et al., "Momentum Centering and Asynchronous Update for Adaptive
    Gradient Methods" (2021).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.acprop(0.1)
      >>> w = jnp.zeros(2)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(w), w)[0]
      Array([-0.05,  0.2 ], dtype=float32)
    """
    return optax.chain(scale_by_acprop(b1, b2, eps, eps_root, mu_dtype=mu_dtype,
                                       nu_dtype=nu_dtype),
                       *weight_decay_parts(weight_decay, mask),
                       scale_by_learning_rate(learning_rate))


# ------------------------------------------------------------------ Simplified AdEMAMix


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """``t``: steps taken (int32); ``m``: ``Σ b1^k·g``; ``n``: EMA of ``g²`` (optax's)."""

    t: Array
    m: Any
    n: Any


def scale_by_simplified_ademamix(
    b1: float = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Simplified AdEMAMix's direction: ``(m + α·g) / (√(n̂ + eps_root) + eps)`` with
    ``m ← b1·m + g`` (no ``1 − b1`` damping, no bias correction), ``n ← b2·n + (1 − b2)·g²``,
    ``n̂ = n/(1 − b2ᵗ)``; ``alpha`` may be a schedule of the step count.

    References: Morwani et al., "Connections between Schedule-Free Optimizers, AdEMAMix,
    and Accelerated SGD Variants" (2025).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_simplified_ademamix(alpha=1.0, eps=0.0)
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]  # (g + g)/|g|
      Array([ 2., -2.], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)
    if not callable(alpha):
        check_non_negative("alpha", alpha)

    def leaf(g, m, n, alpha_t, correction):
        g32 = upcast(g)
        alpha_t, correction = alpha_t.astype(g32.dtype), correction.astype(g32.dtype)
        m32 = g32 + b1 * upcast(m)
        n32 = g32 * g32 + b2 * (upcast(n) - g32 * g32)
        direction = (m32 + alpha_t * g32) / (jnp.sqrt(n32 / correction + eps_root) + eps)
        return as_update(direction, g), m32.astype(m.dtype), n32.astype(n.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleBySimplifiedAdEMAMixState(jnp.zeros([], jnp.int32), _zeros(params, mu_dtype),
                                              _zeros(params, nu_dtype))

    def update(updates, state, params=None):
        del params
        dtype = scalar_dtype(updates)
        alpha_t = jnp.asarray(alpha(state.t) if callable(alpha) else alpha, dtype)
        t = increment_count(state.t)
        out, m, n = apply((updates, state.m, state.n),
                          (alpha_t, bias_correction_factor(b2, t, dtype)))
        return out, ScaleBySimplifiedAdEMAMixState(t, m, n)

    return optax.GradientTransformation(init, update)


def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.99,
    b2: float = 0.95,
    alpha: ScalarOrSchedule = 0.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    mask: Mask = None,
    *,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Simplified AdEMAMix: ``w ← w − lr·((m + α·g)/(√n̂ + eps) + wd·w)``
    (:func:`scale_by_simplified_ademamix`). ``alpha = 0`` is Adam with an undamped
    momentum (rescale ``lr`` by ``1 − b1`` to compare).

    References: Morwani et al., "Connections between Schedule-Free Optimizers, AdEMAMix,
    and Accelerated SGD Variants" (2025).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.simplified_ademamix(0.1)
      >>> w = jnp.zeros(2)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(w), w)[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root, mu_dtype=mu_dtype,
                                     nu_dtype=nu_dtype),
        *weight_decay_parts(weight_decay, mask),
        scale_by_learning_rate(learning_rate))
