"""Adaptive methods outside the Adam family: Adadelta, NovoGrad and Rprop.

Same signatures and defaults as optax 0.2.8; two places where optax's numbers are not what
its documentation (and PyTorch) describe are fixed here and said so in the docstring.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask
from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    as_scalar,
    as_update,
    dtype_of,
    full_like,
    increment_count,
    needs_zero_guard,
    negate,
    per_leaf,
    safe_div,
    upcast,
    update_dtype,
    weight_decay_parts,
)
from lossjax.optimizers._transforms import (
    scale_by_learning_rate,
)

Array = jax.Array


class ScaleByAdaDeltaState(NamedTuple):
    """``e_g``: EMA of ``g²``; ``e_x``: EMA of the squared steps ``Δ²``."""

    e_g: Any
    e_x: Any


def scale_by_adadelta(rho: float = 0.9, eps: float = 1e-6) -> optax.GradientTransformation:
    """Adadelta's direction: ``Δ = √(E[Δ²] + eps) / √(E[g²] + eps) · g``.

    ``E[g²] ← ρ·E[g²] + (1 − ρ)·g²`` before the step, ``E[Δ²] ← ρ·E[Δ²] + (1 − ρ)·Δ²``
    after it. ``eps > 0`` is required: with ``eps = 0`` the first step is ``0/0``.

    References: Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_adadelta(rho=0.0, eps=1.0)
      >>> tx.update(jnp.array([0.0, 3.0]), tx.init(jnp.zeros(2)))[0]
      Array([0.       , 0.9486833], dtype=float32)
    """
    check_in_range("rho", rho, 0.0, 1.0)
    check_positive("eps", eps)

    def leaf(g, e_g, e_x):
        g32 = upcast(g)
        e_g32 = rho * upcast(e_g) + (1.0 - rho) * abs_sq(g32)
        step = jnp.sqrt(upcast(e_x) + eps) / jnp.sqrt(e_g32 + eps) * g32
        e_x32 = rho * upcast(e_x) + (1.0 - rho) * abs_sq(step)
        return as_update(step, g), e_g32.astype(e_g.dtype), e_x32.astype(e_x.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByAdaDeltaState(jax.tree.map(full_like, params),
                                    jax.tree.map(full_like, params))

    def update(updates, state, params=None):
        del params
        out, e_g, e_x = apply((updates, state.e_g, state.e_x))
        return out, ScaleByAdaDeltaState(e_g, e_x)

    return optax.GradientTransformation(init, update)


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    weight_decay_mask: Mask = None,
) -> optax.GradientTransformation:
    """Adadelta: ``w ← w − lr·Δ`` with ``Δ`` from :func:`scale_by_adadelta` on ``g + wd·w``.

    ``learning_rate=None`` means 1.0, the paper's and PyTorch's default (optax 0.2.8 skips
    the sign flip then and steps *up* the gradient). ``weight_decay`` is L2 (added to the
    gradient before the scaling, as PyTorch); ``weight_decay_mask`` selects the leaves.

    References: Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adadelta(rho=0.0, eps=1.0)
      >>> opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)), jnp.zeros(1))[0]
      Array([-0.9486833], dtype=float32)
    """
    return optax.chain(*weight_decay_parts(weight_decay, weight_decay_mask),
                       scale_by_adadelta(rho, eps),
                       scale_by_learning_rate(1.0 if learning_rate is None else learning_rate))


class ScaleByNovogradState(NamedTuple):
    """``count`` (int32); ``mu``: momentum (shaped like the params); ``nu``: EMA of the
    squared norm of each leaf's gradient (one scalar per leaf)."""

    count: Array
    mu: Any
    nu: Any


def scale_by_novograd(
    b1: float = 0.9,
    b2: float = 0.25,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    """NovoGrad's direction: layer-wise second moments.

    Per leaf: ``n ← b2·n + (1 − b2)·‖g‖²`` (``n = ‖g‖²`` at the first step),
    ``m ← b1·m + g/(√(n + eps_root) + eps) + wd·w`` (``m`` starts from 0). The update is
    ``m``; ``update`` needs ``params``.

    References: Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive
    Moments for Training of Deep Networks" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_novograd(eps=0.0)
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))[0]
      Array([0.6, 0.8], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)
    check_non_negative("weight_decay", weight_decay)
    guard = needs_zero_guard(eps, eps_root)

    def leaf(g, m, n, w, first):
        g32 = upcast(g)
        squared_norm = jnp.sum(abs_sq(g32))
        n32 = jnp.where(first, squared_norm, b2 * upcast(n) + (1.0 - b2) * squared_norm)
        step = safe_div(g32, jnp.sqrt(n32 + eps_root) + eps, guard) + weight_decay * upcast(w)
        m32 = jnp.where(first, 0.0, b1 * upcast(m)) + step
        return as_update(m32, g), m32.astype(m.dtype), n32.astype(n.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        mu = jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params)
        nu = jax.tree.map(lambda p: jnp.zeros([], update_dtype(dtype_of(p))), params)
        return ScaleByNovogradState(jnp.zeros([], jnp.int32), mu, nu)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_novograd needs the parameters: call "
                             "update(updates, state, params)")
        count = increment_count(state.count)
        out, mu, nu = apply((updates, state.mu, state.nu, params), (count == 1,))
        return out, ScaleByNovogradState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.25,
    eps: float = 1e-6,
    eps_root: float = 0.0,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """NovoGrad: ``w ← w − lr·m`` with layer-wise normalised momentum
    (:func:`scale_by_novograd`).

    References: Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive
    Moments for Training of Deep Networks" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.novograd(0.1, eps=0.0)
      >>> opt.update(jnp.array([3.0, 4.0]), opt.init(jnp.zeros(2)), jnp.zeros(2))[0].round(4)
      Array([-0.06, -0.08], dtype=float32)
    """
    return optax.chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
                       scale_by_learning_rate(learning_rate))


class ScaleByRpropState(NamedTuple):
    """``step_sizes``: per-coordinate step; ``prev_updates``: the last ``step·sign(g)`` (0
    after a sign change)."""

    step_sizes: Any
    prev_updates: Any


def scale_by_rprop(
    learning_rate: float,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    min_step_size: float = 1e-6,
    max_step_size: float = 50.0,
) -> optax.GradientTransformation:
    """Rprop's step (iRprop⁻), the size adapted per coordinate from the sign of ``g``.

    With ``s = g·Δ_prev``: ``η ← clip(η·eta_plus, min, max)`` if ``s > 0``,
    ``clip(η·eta_minus, min, max)`` if ``s < 0``, unchanged if ``s = 0``; the step is
    ``Δ = η·sign(g)``, or 0 after a sign change (``s < 0``). Step sizes start at
    ``learning_rate``. The direction is ``Δ`` of *this* step, as PyTorch's ``Rprop`` and
    the paper; optax 0.2.8 returns the previous step's ``Δ`` (its updates lag by one
    step, the first being 0).

    References: Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm" (1993); Igel & Hüsken, "Improving the Rprop Learning
    Algorithm" (2000).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_rprop(0.1)
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.array([1.0, -1.0]), state)
      >>> tx.update(jnp.array([1.0, 1.0]), state)[0]
      Array([0.12, 0.  ], dtype=float32)
    """
    check_positive("learning_rate", learning_rate)
    check_in_range("eta_minus", eta_minus, 0.0, 1.0)
    check_positive("eta_plus", eta_plus)
    check_positive("min_step_size", min_step_size)
    check_positive("max_step_size", max_step_size)

    def leaf(g, eta, previous):
        g32, eta32 = upcast(g), upcast(eta)
        s = g32 * upcast(previous)
        dtype = s.dtype
        factor = jnp.where(s > 0, as_scalar(eta_plus, dtype), as_scalar(eta_minus, dtype))
        eta32 = jnp.where(s == 0, eta32, jnp.clip(eta32 * factor, as_scalar(min_step_size, dtype),
                                                  as_scalar(max_step_size, dtype)))
        step = jnp.where(s < 0, 0.0, eta32 * jnp.sign(g32))
        return as_update(step, g), eta32.astype(eta.dtype), step.astype(previous.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByRpropState(jax.tree.map(lambda p: full_like(p, learning_rate), params),
                                 jax.tree.map(full_like, params))

    def update(updates, state, params=None):
        del params
        out, step_sizes, previous = apply((updates, state.step_sizes, state.prev_updates))
        return out, ScaleByRpropState(step_sizes, previous)

    return optax.GradientTransformation(init, update)


def rprop(
    learning_rate: float,
    eta_minus: float = 0.5,
    eta_plus: float = 1.2,
    min_step_size: float = 1e-6,
    max_step_size: float = 50.0,
) -> optax.GradientTransformation:
    """Rprop: ``w ← w − Δ`` with the sign-based per-coordinate step of
    :func:`scale_by_rprop` (``learning_rate`` is the initial step size; full-batch
    gradients, as the method assumes).

    References: Riedmiller & Braun (1993); Igel & Hüsken (2000).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.rprop(0.1)
      >>> opt.update(jnp.array([2.0, -3.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        negate())

