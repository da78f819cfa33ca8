"""The Adam family: Adam's moments with another denominator, correction or momentum.

Each optimizer is a chain of one ``scale_by_*`` direction, optional decoupled weight decay
and :func:`scale_by_learning_rate`, with optax 0.2.8's signature, defaults and numbers
(``adopt`` and ``ademamix`` are in ``optax.contrib`` there). Every per-leaf step runs in at
least float32 (half-precision moments never meet an ``eps`` that underflows), the bias
corrections are scalars computed once per step, and with ``eps = eps_root = 0`` a zero
second moment gives a zero step instead of 0/0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._mask import Mask
from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    abs_sq,
    adam_moments,
    as_scalar,
    as_update,
    bias_correction_factor,
    check_moment_hyperparameters,
    ema_of_squares,
    first_moment_estimate,
    full_like,
    increment_count,
    may_be_zero,
    moment_corrections,
    needs_zero_guard,
    per_leaf,
    safe_div,
    scalar_dtype,
    upcast,
    weight_decay_parts,
)
from lossjax.optimizers._transforms import (
    ScaleByAdamState,
    scale_by_adam,
    scale_by_learning_rate,
)

Array = jax.Array


def _moments(params: Any, n: int, value: float = 0.0, dtype: Any = None) -> list[Any]:
    """``n`` trees shaped like ``params``, filled with ``value``."""
    return [jax.tree.map(lambda p: full_like(p, value, dtype), params) for _ in range(n)]


def _zero_count() -> Array:
    return jnp.zeros([], jnp.int32)


def _with_decay(direction, weight_decay, mask, learning_rate) -> optax.GradientTransformation:
    """``direction``, then ``u ← u + wd·w`` (decoupled decay), then ``−lr``."""
    return optax.chain(direction, *weight_decay_parts(weight_decay, mask),
                       scale_by_learning_rate(learning_rate))


# ---------------------------------------------------------------------------- AMSGrad


class ScaleByAmsgradState(NamedTuple):
    """``count`` (int32); ``mu``, ``nu``: Adam's moments; ``nu_max``: running max of ``v̂``."""

    count: Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """AMSGrad's direction: ``m̂ / (√(v_max + eps_root) + eps)``, ``v_max ← max(v_max, v̂)``.

    ``m̂``, ``v̂`` as in :func:`scale_by_adam`; ``bias_correction_mu`` /
    ``bias_correction_nu = False`` use the raw ``m`` / ``v`` (Reddi et al.'s original).
    PyTorch's ``Adam(amsgrad=True)`` takes the max of the raw ``v`` and corrects after.

    References: Reddi et al., "On the Convergence of Adam and Beyond" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_amsgrad()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps, eps_root)
    guard = needs_zero_guard(eps, eps_root)

    def leaf(g, m, v, v_max, c1, c2):
        g32, m32, v32 = adam_moments(g, m, v, b1, b2)
        m_hat = m32 / c1.astype(m32.dtype) if bias_correction_mu else m32
        v_eff = v32 / c2.astype(v32.dtype) if bias_correction_nu else v32
        v_max32 = jnp.maximum(upcast(v_max), v_eff)
        direction = safe_div(m_hat, jnp.sqrt(v_max32 + eps_root) + eps, guard)
        return (as_update(direction, g), m32.astype(m.dtype), v32.astype(v.dtype),
                v_max32.astype(v_max.dtype))

    apply = per_leaf(leaf, 4)

    def init(params):
        mu = jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params)
        return ScaleByAmsgradState(_zero_count(), mu, *_moments(params, 2, dtype=nu_dtype))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        dtype = scalar_dtype(updates)
        scalars = (bias_correction_factor(b1, count, dtype),
                   bias_correction_factor(b2, count, dtype))
        out, mu, nu, nu_max = apply((updates, state.mu, state.nu, state.nu_max), scalars)
        return out, ScaleByAmsgradState(count, mu, nu, nu_max)

    return optax.GradientTransformation(init, update)


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """AMSGrad: Adam with a non-decreasing second moment, ``w ← w − lr·m̂/(√v_max + eps)``.

    See :func:`scale_by_amsgrad`. References: Reddi et al., "On the Convergence of Adam
    and Beyond" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.amsgrad(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(
        scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype, bias_correction_mu,
                         bias_correction_nu, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate))


# ----------------------------------------------------------------------------- AdaMax


def scale_by_adamax(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    """AdaMax's direction: ``m̂ / u`` with ``u ← max(b2·u, |g| + eps)`` (infinity norm).

    ``m ← b1·m + (1 − b1)·g``, ``m̂ = m/(1 − b1ᵗ)``; the state is a
    :class:`ScaleByAdamState` with ``nu = u``. PyTorch's ``Adamax`` adds ``eps`` the same way.

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2014), §7.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_adamax()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps)
    guard = may_be_zero(eps)

    def leaf(g, m, u, c1):
        g32 = upcast(g)
        m32 = b1 * upcast(m) + (1.0 - b1) * g32
        u32 = jnp.maximum(jnp.abs(g32) + eps, b2 * upcast(u))
        direction = safe_div(m32 / c1.astype(m32.dtype), u32, guard)
        return as_update(direction, g), m32.astype(m.dtype), u32.astype(u.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByAdamState(_zero_count(), *_moments(params, 2))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        c1 = bias_correction_factor(b1, count, scalar_dtype(updates))
        out, mu, nu = apply((updates, state.mu, state.nu), (c1,))
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def adamax(
    learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    """AdaMax: ``w ← w − lr·m̂/u``, ``u ← max(b2·u, |g| + eps)`` (:func:`scale_by_adamax`).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2014), §7.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adamax(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """AdaMax with decoupled weight decay: ``w ← w − lr·(m̂/u + wd·w)``.

    ``mask`` selects the leaves that decay. References: Kingma & Ba (2014), §7;
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adamaxw(0.1, weight_decay=0.5)
      >>> params = jnp.array([1.0, 1.0])
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(params), params)[0]
      Array([-0.15,  0.05], dtype=float32)
    """
    return _with_decay(scale_by_adamax(b1, b2, eps), weight_decay, mask, learning_rate)


# ------------------------------------------------------------------------------ NAdam


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """NAdam: Adam with Nesterov momentum,
    ``m̂ = b1·m/(1 − b1ᵗ⁺¹) + (1 − b1)·g/(1 − b1ᵗ)``, ``w ← w − lr·m̂/(√v̂ + eps)``.

    PyTorch's ``NAdam`` also multiplies ``b1`` by a momentum-decay schedule
    ``1 − ½·0.96^(t·0.004)``; Keras' ``Nadam`` uses the same schedule; optax and lossjax
    follow Dozat's form without it. ``nesterov=False`` gives plain Adam.

    References: Dozat, "Incorporating Nesterov Momentum into Adam" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.nadam(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                                     nu_dtype=nu_dtype),
                       scale_by_learning_rate(learning_rate))


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: float = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = True,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """NAdamW: :func:`nadam` with decoupled weight decay, ``w ← w − lr·(m̂/(√v̂ + eps) + wd·w)``.

    References: Dozat (2016); Loshchilov & Hutter, "Decoupled Weight Decay
    Regularization" (2019).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.nadamw(0.1, weight_decay=0.5)
      >>> params = jnp.array([1.0, 1.0])
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(params), params)[0]
      Array([-0.1973...,  0.0973...], dtype=float32)
    """
    return _with_decay(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov,
                                     nu_dtype=nu_dtype),
                       weight_decay, mask, learning_rate)


# ------------------------------------------------------------------------------ RAdam


def scale_by_radam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """Rectified Adam's direction: ``r_t·m̂/(√(v̂ + eps_root) + eps)`` once the variance of
    the adaptive rate is tractable (``ρ_t >= threshold``), plain momentum ``m̂`` before.

    ``ρ_∞ = 2/(1 − b2) − 1``, ``ρ_t = ρ_∞ − 2t·b2ᵗ/(1 − b2ᵗ)``,
    ``r_t = √((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t))``. PyTorch's ``RAdam`` uses
    the fixed threshold 5; Keras has no RAdam.

    References: Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
    (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_radam()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 0.5, -2. ], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps, eps_root)
    guard = needs_zero_guard(eps, eps_root)
    rho_inf = 2.0 / (1.0 - b2) - 1.0

    def leaf(g, m, v, c1, c1_next, c2, rectify, r):
        g32, m32, v32 = adam_moments(g, m, v, b1, b2)
        m_hat = first_moment_estimate(m32, g32, b1, c1, c1_next, nesterov)
        adapted = r.astype(m32.dtype) * safe_div(
            m_hat, jnp.sqrt(v32 / c2.astype(v32.dtype) + eps_root) + eps, guard)
        direction = jnp.where(rectify, adapted, m_hat)
        return as_update(direction, g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByAdamState(_zero_count(), *_moments(params, 2))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        c1, c1_next, c2 = moment_corrections(b1, b2, count, scalar_dtype(updates))
        rho = rho_inf - 2 * count.astype(c2.dtype) * (1 - c2) / c2
        ratio = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)
        r = jnp.sqrt(jnp.maximum(ratio, 0))
        out, mu, nu = apply((updates, state.mu, state.nu),
                            (c1, c1_next, c2, rho >= threshold, r))
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def radam(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    threshold: float = 5.0,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """RAdam: ``w ← w − lr·d`` with Rectified Adam's direction ``d`` (:func:`scale_by_radam`).

    References: Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond"
    (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.radam(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.05,  0.2], dtype=float32)
    """
    return optax.chain(scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
                       scale_by_learning_rate(learning_rate))


# -------------------------------------------------------------------------- AdaBelief


class ScaleByBeliefState(NamedTuple):
    """``count`` (int32); ``mu``: EMA of ``g``; ``nu``: EMA of ``(g − m)²`` (+ ``eps_root``)."""

    count: Array
    mu: Any
    nu: Any


def scale_by_belief(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """AdaBelief's direction: ``m̂ / (√ŝ + eps)``, the second moment of the *surprise*.

    ``m ← b1·m + (1 − b1)·g``, ``s ← b2·s + (1 − b2)·(g − m)² + eps_root``,
    ``ŝ = s/(1 − b2ᵗ)`` (``eps_root`` is added to the stored ``s`` every step, as the
    paper and optax do).

    References: Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
    Observed Gradients" (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_belief()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1.1111..., -1.1111...], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps, eps_root)
    guard = needs_zero_guard(eps, eps_root)

    def leaf(g, m, s, c1, c1_next, c2):
        g32 = upcast(g)
        m32 = b1 * upcast(m) + (1.0 - b1) * g32
        surprise = g32 - m32
        s32 = b2 * upcast(s) + (1.0 - b2) * abs_sq(surprise) + eps_root
        m_hat = first_moment_estimate(m32, g32, b1, c1, c1_next, nesterov)
        direction = safe_div(m_hat, jnp.sqrt(s32 / c2.astype(s32.dtype)) + eps, guard)
        return as_update(direction, g), m32.astype(m.dtype), s32.astype(s.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByBeliefState(_zero_count(), *_moments(params, 2))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        scalars = moment_corrections(b1, b2, count, scalar_dtype(updates))
        out, mu, nu = apply((updates, state.mu, state.nu), scalars)
        return out, ScaleByBeliefState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-16,
    eps_root: float = 1e-16,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """AdaBelief: ``w ← w − lr·m̂/(√ŝ + eps)`` (:func:`scale_by_belief`).

    References: Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
    Observed Gradients" (2020).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adabelief(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)))[0]
      Array([-0.1111...,  0.1111...], dtype=float32)
    """
    return optax.chain(scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
                       scale_by_learning_rate(learning_rate))


# ------------------------------------------------------------------------------- Yogi


def scale_by_yogi(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-3,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 1e-6,
) -> optax.GradientTransformation:
    """Yogi's direction: Adam's, with an additive second-moment update
    ``v ← v − (1 − b2)·sign(v − g²)·g²``.

    ``m`` and ``v`` start at ``initial_accumulator_value`` and are bias-corrected as in
    Adam (as optax does; the paper does not correct).

    References: Zaheer et al., "Adaptive Methods for Nonconvex Optimization" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_yogi(eps=0.0, initial_accumulator_value=0.0)
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps, eps_root)
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    guard = needs_zero_guard(eps, eps_root)

    def leaf(g, m, v, c1, c2):
        g32 = upcast(g)
        m32 = b1 * upcast(m) + (1.0 - b1) * g32
        g2 = abs_sq(g32)
        v_old = upcast(v)
        v32 = v_old - (1.0 - b2) * jnp.sign(v_old - g2) * g2
        denominator = jnp.sqrt(v32 / c2.astype(v32.dtype) + eps_root) + eps
        direction = safe_div(m32 / c1.astype(m32.dtype), denominator, guard)
        return as_update(direction, g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        return ScaleByAdamState(_zero_count(), *_moments(params, 2, initial_accumulator_value))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        dtype = scalar_dtype(updates)
        scalars = (bias_correction_factor(b1, count, dtype),
                   bias_correction_factor(b2, count, dtype))
        out, mu, nu = apply((updates, state.mu, state.nu), scalars)
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def yogi(
    learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3
) -> optax.GradientTransformation:
    """Yogi: ``w ← w − lr·m̂/(√v̂ + eps)`` with Yogi's additive ``v`` (:func:`scale_by_yogi`).

    References: Zaheer et al., "Adaptive Methods for Nonconvex Optimization" (2018).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.yogi(0.1)
      >>> opt.update(jnp.array([1.0]), opt.init(jnp.zeros(1)))[0]
      Array([-0.0999...], dtype=float32)
    """
    return optax.chain(scale_by_yogi(b1, b2, eps), scale_by_learning_rate(learning_rate))


# ------------------------------------------------------------------------------- Adan


class ScaleByAdanState(NamedTuple):
    """``m``: EMA of ``g``; ``v``: of ``g − g_prev``; ``n``: of ``(g + b2'·(g − g_prev))²``;
    ``g``: the previous gradient; ``t``: steps taken (int32)."""

    m: Any
    v: Any
    n: Any
    g: Any
    t: Array


def scale_by_adan(
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> optax.GradientTransformation:
    """Adan's direction (Nesterov momentum estimated from gradient differences).

    With ``Δ = g − g_prev`` (0 at the first step): ``m ← b1·m + (1 − b1)·g``,
    ``v ← b2·v + (1 − b2)·Δ``, ``n ← b3·n + (1 − b3)·(g + (1 − b2)·Δ)²``; the direction is
    ``(m̂ + (1 − b2)·v̂) / (√(n̂ + eps_root) + eps)``, hats dividing by ``1 − bᵗ``. The
    decay rates are optax's (``b = 1 − β`` of the paper, whose β's are 0.02, 0.08, 0.01).

    References: Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster
    Optimizing Deep Models" (2022), Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_adan()
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        check_in_range(name, value, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)
    guard = needs_zero_guard(eps, eps_root)

    def leaf(g, m, v, n, g_prev, first, c1, c2, c3):
        g32 = upcast(g)
        diff = jnp.where(first, 0.0, g32 - upcast(g_prev))
        m32 = b1 * upcast(m) + (1.0 - b1) * g32
        v32 = b2 * upcast(v) + (1.0 - b2) * diff
        lookahead = g32 + (1.0 - b2) * diff
        n32 = b3 * upcast(n) + (1.0 - b3) * abs_sq(lookahead)
        dtype = m32.dtype
        numerator = m32 / c1.astype(dtype) + (1.0 - b2) * (v32 / c2.astype(dtype))
        denominator = jnp.sqrt(n32 / c3.astype(dtype) + eps_root) + eps
        return (as_update(safe_div(numerator, denominator, guard), g), m32.astype(m.dtype),
                v32.astype(v.dtype), n32.astype(n.dtype), g.astype(g_prev.dtype))

    apply = per_leaf(leaf, 5)

    def init(params):
        m, v, n, g = _moments(params, 4)
        return ScaleByAdanState(m, v, n, g, _zero_count())

    def update(updates, state, params=None):
        del params
        t = increment_count(state.t)
        dtype = scalar_dtype(updates)
        scalars = (state.t == 0, *(bias_correction_factor(b, t, dtype) for b in (b1, b2, b3)))
        out, m, v, n, g = apply((updates, state.m, state.v, state.n, state.g), scalars)
        return out, ScaleByAdanState(m, v, n, g, t)

    return optax.GradientTransformation(init, update)


def adan(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.98,
    b2: float = 0.92,
    b3: float = 0.99,
    eps: float = 1e-8,
    eps_root: float = 1e-8,
    weight_decay: float = 0.0,
    mask: Mask = None,
) -> optax.GradientTransformation:
    """Adan: ``w ← w − lr·(d + wd·w)`` with Adan's direction ``d`` (:func:`scale_by_adan`).

    The weight decay is decoupled and added to the step, as optax does (the paper divides
    the step by ``1 + lr·wd`` instead).

    References: Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster
    Optimizing Deep Models" (2022).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adan(0.1)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)), jnp.zeros(2))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return _with_decay(scale_by_adan(b1, b2, b3, eps, eps_root), weight_decay, mask,
                       learning_rate)


# ------------------------------------------------------------------------------ ADOPT


def _quarter_power(count: Array) -> Array:
    return count**0.25


def scale_by_adopt(
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[Array], Array] = _quarter_power,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """ADOPT's direction: momentum of gradients normalised by the *previous* second moment.

    Step 0 only sets ``v = g²`` (the update is 0). Then ``u = clip(g / max(√v, eps), ±c_t)``
    with ``c_t = clip_value_fn(t) = t^¼`` (``use_clipping``), ``m ← b1·m + (1 − b1)·u``,
    ``v ← b2·v + (1 − b2)·g²``, and the direction is ``m`` (Nesterov: ``b1·m + (1 − b1)·u``).
    The state is a :class:`ScaleByAdamState`.

    References: Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any β2 with the
    Optimal Rate" (2024).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_adopt()
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.array([0.5, -2.0]), state)
      >>> tx.update(jnp.array([0.5, -2.0]), state)[0]
      Array([ 0.1, -0.1], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps)

    def leaf(g, m, v, b1_t, b2_t, clip_value):
        g32, v_old = upcast(g), upcast(v)
        dtype = g32.dtype
        b1_t, b2_t = b1_t.astype(dtype), b2_t.astype(dtype)
        v32 = b2_t * v_old + (1.0 - b2_t) * abs_sq(g32)
        normalised = g32 / jnp.maximum(jnp.sqrt(v_old), as_scalar(eps, g32.dtype))
        if use_clipping:
            c = clip_value.astype(dtype)
            normalised = jnp.clip(normalised, -c, c)
        m32 = b1_t * upcast(m) + (1.0 - b1_t) * normalised
        direction = b1_t * m32 + (1.0 - b1_t) * normalised if nesterov else m32
        return as_update(direction, g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        mu = jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params)
        return ScaleByAdamState(_zero_count(), mu, *_moments(params, 1, dtype=nu_dtype))

    def update(updates, state, params=None):
        del params
        dtype = scalar_dtype(updates)
        started = state.count > 0
        scalars = (jnp.where(started, as_scalar(b1, dtype), 1.0).astype(dtype),
                   jnp.where(started, as_scalar(b2, dtype), 0.0).astype(dtype),
                   jnp.asarray(clip_value_fn(state.count), dtype))
        out, mu, nu = apply((updates, state.mu, state.nu), scalars)
        return out, ScaleByAdamState(increment_count(state.count), mu, nu)

    return optax.GradientTransformation(init, update)


def adopt(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.9999,
    eps: float = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[Array], Array] = _quarter_power,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """ADOPT: ``w ← w − lr·m`` with ADOPT's momentum (:func:`scale_by_adopt`); optax has it
    as ``optax.contrib.adopt``.

    References: Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any β2 with the
    Optimal Rate" (2024).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.adopt(1.0)
      >>> state = opt.init(jnp.zeros(2))
      >>> _, state = opt.update(jnp.array([0.5, -2.0]), state)
      >>> opt.update(jnp.array([0.5, -2.0]), state)[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return optax.chain(
        scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=nesterov, use_clipping=use_clipping,
                       clip_value_fn=clip_value_fn, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate))


# --------------------------------------------------------------------------- AdEMAMix


class ScaleByAdemamixState(NamedTuple):
    """``count``, ``count_m2``: steps taken (int32); ``m1``: fast EMA of ``g``; ``m2``: slow
    EMA of ``g``; ``nu``: EMA of ``g²``."""

    count: Array
    count_m2: Array
    m1: Any
    m2: Any
    nu: Any


def _at(value: ScalarOrSchedule, count: Array) -> Any:
    return value(count) if callable(value) else value


def scale_by_ademamix(
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """AdEMAMix's direction: ``(m̂₁ + α·m₂) / (√(v̂ + eps_root) + eps)``.

    ``m₁ ← b1·m₁ + (1 − b1)·g`` (fast, bias-corrected), ``m₂ ← b3·m₂ + (1 − b3)·g`` (slow,
    not corrected), ``v`` as in Adam. ``b3`` and ``alpha`` may be schedules of
    ``count_m2`` (the paper warms both up). ``mu_dtype`` stores all three moments
    unless ``nu_dtype`` is given for ``v``.
    Note the default ``alpha`` here is 6 and in :func:`ademamix` 5, as in optax.

    References: Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older" (2024).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_ademamix(alpha=0.0)
      >>> tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))[0]
      Array([ 1., -1.], dtype=float32)
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    if not callable(b3):
        check_in_range("b3", b3, 0.0, 1.0)
    if not callable(alpha):
        check_non_negative("alpha", alpha)
    check_non_negative("eps", eps)
    check_non_negative("eps_root", eps_root)
    guard = needs_zero_guard(eps, eps_root)

    def leaf(g, m1, m2, v, b3_t, alpha_t, c1, c2):
        g32 = upcast(g)
        dtype = g32.dtype
        b3_t, alpha_t = b3_t.astype(dtype), alpha_t.astype(dtype)
        m1_32 = b1 * upcast(m1) + (1.0 - b1) * g32
        m2_32 = b3_t * upcast(m2) + (1.0 - b3_t) * g32
        v32 = ema_of_squares(upcast(v), g32, b2)
        numerator = m1_32 / c1.astype(dtype) + alpha_t * m2_32
        denominator = jnp.sqrt(v32 / c2.astype(dtype) + eps_root) + eps
        return (as_update(safe_div(numerator, denominator, guard), g),
                m1_32.astype(m1.dtype), m2_32.astype(m2.dtype), v32.astype(v.dtype))

    apply = per_leaf(leaf, 4)

    def init(params):
        return ScaleByAdemamixState(_zero_count(), _zero_count(),
                                    *_moments(params, 2, dtype=mu_dtype),
                                    *_moments(params, 1, dtype=nu_dtype or mu_dtype))

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        dtype = scalar_dtype(updates)
        scalars = (jnp.asarray(_at(b3, state.count_m2), dtype),
                   jnp.asarray(_at(alpha, state.count_m2), dtype),
                   bias_correction_factor(b1, count, dtype),
                   bias_correction_factor(b2, count, dtype))
        out, m1, m2, nu = apply((updates, state.m1, state.m2, state.nu), scalars)
        return out, ScaleByAdemamixState(count, increment_count(state.count_m2), m1, m2, nu)

    return optax.GradientTransformation(init, update)


def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    weight_decay: float = 0.0,
    mask: Mask = None,
    *,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """AdEMAMix: ``w ← w − lr·((m̂₁ + α·m₂)/(√v̂ + eps) + wd·w)`` (:func:`scale_by_ademamix`);
    optax has it as ``optax.contrib.ademamix``.

    References: Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older" (2024).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.ademamix(0.1, alpha=0.0)
      >>> opt.update(jnp.array([0.5, -2.0]), opt.init(jnp.zeros(2)), jnp.zeros(2))[0]
      Array([-0.1,  0.1], dtype=float32)
    """
    return _with_decay(scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype,
                                         nu_dtype=nu_dtype),
                       weight_decay, mask, learning_rate)
