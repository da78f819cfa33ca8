"""Dual-averaging and averaged-SGD optimizers: MADGRAD, FTRL-Proximal and ASGD.

Each keeps sums (or an average) of past gradients or iterates and recomputes the
parameters from them, so the update returned is ``w_new − w`` and they need ``params``.
``madgrad`` has ``optax.contrib.madgrad``'s arguments, numbers and state (0.2.8);
``ftrl`` follows Keras' ``Ftrl`` (McMahan et al.'s FTRL-Proximal; PyTorch has none);
``asgd`` follows PyTorch's ``torch.optim.ASGD``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative, concrete_value
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_scalar,
    as_update,
    full_like,
    increment_count,
    per_leaf,
    scalar_dtype,
    upcast,
    weight_decay_parts,
)

Array = jax.Array


def _needs_params(name: str, params: Any) -> None:
    if params is None:
        raise ValueError(f"{name} needs the parameters: call update(grads, state, params)")


def _rate_at(learning_rate: ScalarOrSchedule, count: Array, dtype: Any) -> Array:
    rate = learning_rate(count) if callable(learning_rate) else learning_rate
    return jnp.asarray(rate, dtype)


def _check_rate(learning_rate: ScalarOrSchedule) -> None:
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)


# ----------------------------------------------------------------------------- MADGRAD


class MadgradState(NamedTuple):
    """``count`` (int32); ``grad_sum_sq``: ``ν = Σλ_k·g_k²``; ``s``: ``Σλ_k·g_k``; ``x0``:
    the initial parameters (optax's fields)."""

    count: Array
    grad_sum_sq: Any
    s: Any
    x0: Any


def scale_by_madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    eps: float = 1e-6,
) -> optax.GradientTransformation:
    """MADGRAD's step (the learning rate is part of it), for ``k = 0, 1, ...``::

        λ_k = (lr_k + eps)·√(k + 1),   ν ← ν + λ_k·g²,   s ← s + λ_k·g,
        z = x₀ − s/(∛ν + eps),          x ← momentum·x + (1 − momentum)·z

    The update returned is ``x_new − x`` (already a descent step). Needs ``params``.

    References: Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized,
    Adaptive, Dual Averaged Gradient Method for Stochastic Optimization" (2021).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_madgrad(1.0, momentum=0.0, eps=0.0)
      >>> w = jnp.zeros(2)
      >>> tx.update(jnp.array([8.0, -1.0]), tx.init(w), w)[0]  # −λg/∛(λg²), λ = 1
      Array([-2.,  1.], dtype=float32)
    """
    _check_rate(learning_rate)
    check_in_range("momentum", momentum, 0.0, 1.0)
    check_non_negative("eps", eps)

    def leaf(g, nu, s, x, x0, lamb):
        g32 = upcast(g)
        lamb = lamb.astype(g32.dtype)
        nu32 = upcast(nu) + lamb * (g32 * g32)
        s32 = upcast(s) + lamb * g32
        z = upcast(x0) - s32 / (jnp.cbrt(nu32) + eps)
        x32 = upcast(x)
        x_new = (1 - momentum) * z + momentum * x32
        return as_update(x_new - x32, g), nu32.astype(nu.dtype), s32.astype(s.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return MadgradState(jnp.zeros([], jnp.int32), jax.tree.map(full_like, params),
                            jax.tree.map(full_like, params),
                            jax.tree.map(lambda p: jnp.array(p, copy=True), params))

    def update(updates, state, params=None):
        _needs_params("madgrad", params)
        dtype = scalar_dtype(updates)
        lr = _rate_at(learning_rate, state.count, dtype)
        lamb = (lr + eps) * jnp.sqrt((state.count + 1).astype(dtype))
        out, nu, s = apply((updates, state.grad_sum_sq, state.s, params, state.x0), (lamb,))
        return out, MadgradState(increment_count(state.count), nu, s, state.x0)

    return optax.GradientTransformation(init, update)


def madgrad(
    learning_rate: ScalarOrSchedule,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    eps: float = 1e-6,
) -> optax.GradientTransformation:
    """MADGRAD: momentumised dual averaging with a cube-root adaptive scale.

    ``weight_decay`` adds ``wd·w`` to the gradient (L2, as the reference implementation);
    see :func:`scale_by_madgrad` for the step. Needs ``params``.

    References: Defazio & Jelassi, "Adaptivity without Compromise: A Momentumized,
    Adaptive, Dual Averaged Gradient Method for Stochastic Optimization" (2021).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import lossjax
      >>> opt = lossjax.madgrad(0.1)
      >>> w = jnp.array([1.0, -1.0])
      >>> state = opt.init(w)
      >>> for _ in range(3):
      ...     u, state = opt.update(w, state, w)  # gradient of ½‖w‖²
      ...     w = optax.apply_updates(w, u)
      >>> w  # optax.contrib.madgrad: the same
      Array([ 0.8928, -0.8928], dtype=float32)
    """
    return optax.chain(*weight_decay_parts(weight_decay, None),
                       scale_by_madgrad(learning_rate, momentum, eps))


# ----------------------------------------------------------------------------- FTRL


class FtrlState(NamedTuple):
    """``count`` (int32); ``accumulator``: ``n = n₀ + Σg²``; ``linear``: ``z`` (Keras'
    ``accumulators`` and ``linears``)."""

    count: Array
    accumulator: Any
    linear: Any


def ftrl(
    learning_rate: ScalarOrSchedule = 0.001,
    learning_rate_power: float = -0.5,
    initial_accumulator_value: float = 0.1,
    l1_regularization_strength: float = 0.0,
    l2_regularization_strength: float = 0.0,
    l2_shrinkage_regularization_strength: float = 0.0,
    beta: float = 0.0,
) -> optax.GradientTransformation:
    """FTRL-Proximal (Keras' ``Ftrl``, same arguments and defaults), per coordinate::

        n' = n + g²,   σ = (n'^(−p) − n^(−p))/lr,   z ← z + g + 2·λ₂ₛ·w − σ·w
        w ← (clip(z, ±λ₁) − z) / (n'^(−p)/lr + 2·(λ₂ + β/(2·lr)))

    with ``p = learning_rate_power`` (−0.5: AdaGrad-like rates). ``λ₁`` gives exact zeros.
    The update returned is ``w_new − w``; needs ``params``. Note that the first step
    already sets ``w`` from ``z`` alone (FTRL does not start from the initial ``w``).

    References: McMahan et al., "Ad Click Prediction: a View from the Trenches" (2013),
    Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.ftrl(1.0, initial_accumulator_value=0.0)
      >>> w = jnp.zeros(2)
      >>> opt.update(jnp.array([3.0, -4.0]), opt.init(w), w)[0]  # −g/√(g²)
      Array([-1.,  1.], dtype=float32)
    """
    _check_rate(learning_rate)
    power_value = concrete_value(learning_rate_power)
    if power_value is None or power_value > 0:
        raise ValueError(f"learning_rate_power must be a number <= 0, got {learning_rate_power!r}")
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("l1_regularization_strength", l1_regularization_strength)
    check_non_negative("l2_regularization_strength", l2_regularization_strength)
    check_non_negative("l2_shrinkage_regularization_strength",
                       l2_shrinkage_regularization_strength)
    check_non_negative("beta", beta)
    power = -learning_rate_power

    def leaf(g, n, z, w, lr):
        g32, w32, n32 = upcast(g), upcast(w), upcast(n)
        lr = lr.astype(g32.dtype)
        n_new = n32 + g32 * g32
        sigma = (n_new ** power - n32 ** power) / lr
        z32 = upcast(z) + g32 + 2 * l2_shrinkage_regularization_strength * w32 - sigma * w32
        quadratic = n_new ** power / lr + 2 * (l2_regularization_strength + beta / (2 * lr))
        l1 = as_scalar(l1_regularization_strength, z32.dtype)
        w_new = (jnp.clip(z32, -l1, l1) - z32) / quadratic
        return as_update(w_new - w32, g), n_new.astype(n.dtype), z32.astype(z.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return FtrlState(jnp.zeros([], jnp.int32),
                         jax.tree.map(lambda p: full_like(p, initial_accumulator_value), params),
                         jax.tree.map(full_like, params))

    def update(updates, state, params=None):
        _needs_params("ftrl", params)
        lr = _rate_at(learning_rate, state.count, scalar_dtype(updates))
        out, n, z = apply((updates, state.accumulator, state.linear, params), (lr,))
        return out, FtrlState(increment_count(state.count), n, z)

    return optax.GradientTransformation(init, update)


# ------------------------------------------------------------------------------ ASGD


class ASGDState(NamedTuple):
    """``count``: steps taken (int32); ``eta``: the next step's rate; ``mu``: the next
    averaging weight; ``ax``: the averaged parameters (PyTorch's ``step``, ``eta``, ``mu``,
    ``ax``). Read the average with ``state.ax`` (inside a chain: ``state[-1].ax``)."""

    count: Array
    eta: Array
    mu: Array
    ax: Any


def asgd(
    learning_rate: float = 0.01,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0.0,
) -> optax.GradientTransformation:
    """Averaged SGD (PyTorch's ``ASGD``, same arguments and defaults), for ``t = 1, 2, ...``::

        g ← g + wd·w,   w ← w·(1 − λ·η_t) − η_t·g,
        ax ← ax + μ_t·(w − ax)
        η_{t+1} = lr/(1 + λ·lr·t)^α,   μ_{t+1} = 1/max(1, t − t₀)

    with ``η_1 = lr``, ``μ_1 = 1``. The averaged parameters ``ax`` (kept in the state) are
    the ones to evaluate once ``t > t₀``. Needs ``params``.

    References: Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging"
    (1992); Bottou, "Stochastic Gradient Descent Tricks" (2012).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.asgd(0.5, lambd=0.0)
      >>> w = jnp.array([1.0, -2.0])
      >>> u, state = opt.update(w, opt.init(w), w)  # gradient of ½‖w‖²: w ← w − ½w
      >>> u, state.ax
      (Array([-0.5,  1. ], dtype=float32), Array([ 0.5, -1. ], dtype=float32))
    """
    check_non_negative("learning_rate", learning_rate)
    check_non_negative("lambd", lambd)
    check_non_negative("alpha", alpha)
    check_non_negative("weight_decay", weight_decay)

    def leaf(g, ax, w, eta, mu):
        g32, w32 = upcast(g), upcast(w)
        eta, mu = eta.astype(g32.dtype), mu.astype(g32.dtype)
        g32 = g32 + weight_decay * w32
        w_new = (w32 * (1 - lambd * eta)).astype(w.dtype)
        w_new = (upcast(w_new) - eta * g32).astype(w.dtype)
        ax32 = upcast(ax)
        ax_new = jnp.where(mu == 1, upcast(w_new), ax32 + (upcast(w_new) - ax32) * mu)
        return as_update(upcast(w_new) - w32, g), ax_new.astype(ax.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        dtype = scalar_dtype(params)
        return ASGDState(jnp.zeros([], jnp.int32), jnp.asarray(learning_rate, dtype),
                         jnp.ones([], dtype), jax.tree.map(full_like, params))

    def update(updates, state, params=None):
        _needs_params("asgd", params)
        out, ax = apply((updates, state.ax, params), (state.eta, state.mu))
        count = increment_count(state.count)
        t = count.astype(state.eta.dtype)
        eta = learning_rate / (1 + lambd * learning_rate * t) ** alpha
        mu = 1 / jnp.maximum(1.0, t - t0)
        return out, ASGDState(count, eta.astype(state.eta.dtype), mu.astype(state.mu.dtype), ax)

    return optax.GradientTransformation(init, update)
