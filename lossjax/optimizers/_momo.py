"""MoMo: momentum methods with a Polyak-type adaptive step size.

MoMo builds a model of the loss from averaged values ``f̄``, gradients ``d`` and
``γ = avg⟨g_k, w_k⟩``, and steps ``τ = min(lr, (f̄ − f* + ⟨d, w⟩ − γ)₊ / ‖d‖²)`` along
``d`` (SGD-momentum) or ``d/√v̂`` (Adam), where ``f*`` is a lower bound of the loss (0 for
most losses). Pass the batch loss to ``update`` as ``value=``.

Arguments, defaults and state are ``optax.contrib.momo`` / ``momo_adam``'s (0.2.8), and
without weight decay the numbers are too. With weight decay ``λ`` lossjax follows the
paper (Schaipp et al., Lemma 3.1, eq. 16) and its reference implementation: the proximal
step divides the whole update, ``w ← (w − τ·d)/(1 + lr·λ)``; optax 0.2.8 divides only
``w`` (``w/(1 + lr·λ) − τ·d``), a first-order difference in ``lr·λ`` (optax PR #1787).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative
from lossjax.optimizers._machinery import (
    ScalarOrSchedule,
    as_scalar,
    as_update,
    bias_correction_factor,
    dtype_of,
    full_like,
    increment_count,
    per_leaf,
    scalar_dtype,
    trained_leaves,
    upcast,
    without_float0,
)

Array = jax.Array


def _check_update_args(name: str, params: Any, value: Any) -> None:
    if params is None:
        raise ValueError(f"{name} needs the parameters: call update(grads, state, params, "
                         "value=loss)")
    if value is None:
        raise ValueError(f"{name} needs the loss: call update(grads, state, params, "
                         "value=loss), e.g. with jax.value_and_grad")


def _total(tree: Any) -> Array:
    leaves: list[Array] = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros([], jnp.float32)
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf
    return total


def _rate(learning_rate: ScalarOrSchedule, count: Array, dtype: Any) -> Array:
    return jnp.asarray(learning_rate(count) if callable(learning_rate) else learning_rate, dtype)


def _step_size(alpha, weight_decay, barf, gamma, iprod, norm_sq, lb, lower_bound,
               adapt_lower_bound, bc1: float | Array = 1.0):
    """``τ`` and the lower bound used this step (Schaipp et al., Algorithms 1–3)."""
    shrink = 1 + alpha * weight_decay
    if adapt_lower_bound:
        cap = shrink * (barf - gamma) + iprod
        lb = jnp.where(cap < shrink * bc1 * lb,
                       jnp.maximum(cap / (2 * bc1 * shrink), lower_bound), lb)
    t1 = jnp.maximum(shrink * (barf - bc1 * lb - gamma) + iprod, 0.0) / norm_sq
    t1 = jnp.where(norm_sq <= jnp.finfo(float).eps, 0.0, t1)
    return jnp.minimum(alpha / bc1, t1), shrink


class MomoState(NamedTuple):
    """``exp_avg``: ``d``; ``barf``: ``f̄``; ``gamma``: ``γ``; ``lb``: the lower bound;
    ``count`` (int32). optax's fields."""

    exp_avg: Any
    barf: Array
    gamma: Array
    lb: Array
    count: Array


def momo(
    learning_rate: ScalarOrSchedule = 1.0,
    beta: float = 0.9,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """MoMo (SGD with momentum and an adaptive step), for ``t = 0, 1, ...``
    (``β = 0`` at ``t = 0``)::

        f̄ ← β·f̄ + (1 − β)·f(w),  d ← β·d + (1 − β)·g,  γ ← β·γ + (1 − β)·⟨g, w⟩
        τ = min(lr, (ρ·(f̄ − f* − γ) + ⟨d, w⟩)₊/‖d‖²),   ρ = 1 + lr·λ
        w ← (w − τ·d)/ρ

    ``adapt_lower_bound`` estimates ``f*`` on the fly from ``lower_bound`` upwards.
    Call ``update(grads, state, params, value=loss)``. An integer leaf (a ``float0``
    gradient) is not trained: it adds nothing to the inner products and gets a zero update.

    References: Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum Models for
    Adaptive Learning Rates" (2024), Algorithm 1 and Lemma 3.1.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> opt = lossjax.momo(weight_decay=0.1)
      >>> w = jnp.array([1.0, 2.0, 3.0])
      >>> value, g = jax.value_and_grad(f)(w)
      >>> u, _ = opt.update(g, opt.init(w), w, value=value)
      >>> w + u  # τ = ½: (w − ½·2w)/1.1 … the paper's [0.5, 1, 1.5]
      Array([0.5, 1. , 1.5], dtype=float32)
    """
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)
    check_in_range("beta", beta, 0.0, 1.0)
    check_non_negative("weight_decay", weight_decay)

    def average_leaf(g, d, w, b):
        g32 = upcast(g)
        b = b.astype(g32.dtype)
        d32 = b * upcast(d) + (1 - b) * g32
        w32 = upcast(w)
        return d32.astype(d.dtype), jnp.vdot(g32, w32), jnp.vdot(d32, d32), jnp.vdot(d32, w32)

    def step_leaf(d, w, tau, shrink):
        w32 = upcast(w)
        w_new = (w32 - tau.astype(w32.dtype) * upcast(d)) / shrink.astype(w32.dtype)
        return (as_update(w_new - w32, w),)

    average = per_leaf(average_leaf, 4)
    step = per_leaf(step_leaf, 1)

    def init(params):
        dtype = _lowest_dtype(params)
        return MomoState(jax.tree.map(full_like, params), jnp.zeros([], dtype),
                         jnp.zeros([], dtype),
                         jnp.asarray(lower_bound, dtype), jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        _check_update_args("momo", params, value)
        # an integer leaf (float0 gradient) adds nothing and gets a zero update
        updates, params = without_float0(updates), trained_leaves(updates, params)
        dtype = state.barf.dtype
        b = jnp.where(state.count == 0, 0.0, as_scalar(beta, dtype)).astype(dtype)
        barf = b * state.barf + (1 - b) * jnp.asarray(value, dtype)
        d, gw, dd, dw = average((updates, state.exp_avg, params), (b,))
        gamma = b * state.gamma + (1 - b) * _total(gw).astype(dtype)
        norm_sq, iprod = _total(dd).astype(dtype), _total(dw).astype(dtype)
        alpha = _rate(learning_rate, state.count, dtype)
        tau, shrink = _step_size(alpha, weight_decay, barf, gamma, iprod, norm_sq, state.lb,
                                 lower_bound, adapt_lower_bound)
        (out,) = step((d, params), (tau, shrink))
        lb = state.lb
        if adapt_lower_bound:
            lb = jnp.maximum((barf + iprod - gamma) - 0.5 * tau * norm_sq, lower_bound)
        return out, MomoState(d, barf, gamma, lb.astype(dtype), increment_count(state.count))

    return optax.GradientTransformationExtraArgs(init, update)


def _lowest_dtype(params: Any) -> Any:
    dtypes = [dtype_of(p) for p in jax.tree.leaves(params)
              if jnp.issubdtype(dtype_of(p), jnp.floating)]
    return min(dtypes, key=lambda d: jnp.finfo(d).bits) if dtypes else scalar_dtype(params)


class MomoAdamState(NamedTuple):
    """``exp_avg``, ``exp_avg_sq``: Adam's moments; ``barf``, ``gamma``, ``lb``, ``count``
    as :class:`MomoState`. optax's fields."""

    exp_avg: Any
    exp_avg_sq: Any
    barf: Array
    gamma: Array
    lb: Array
    count: Array


def momo_adam(
    learning_rate: ScalarOrSchedule = 1e-2,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    lower_bound: float = 0.0,
    weight_decay: float = 0.0,
    adapt_lower_bound: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """MoMo-Adam: Adam's direction with MoMo's step size, for ``t = 1, 2, ...``::

        m ← b1·m + (1 − b1)·g,  v ← b2·v + (1 − b2)·g²,  D = √(v/(1 − b2ᵗ)) + eps
        f̄, γ as in :func:`momo` with ``b1``;  c = 1 − b1ᵗ
        τ = min(lr/c, (ρ·(f̄ − c·f* − γ) + ⟨m, w⟩)₊/⟨m, m/D⟩),   ρ = 1 + lr·λ
        w ← (w − τ·m/D)/ρ

    Call ``update(grads, state, params, value=loss)``. An integer leaf (a ``float0``
    gradient) is not trained: it adds nothing to the inner products and gets a zero update.

    References: Schaipp et al., "MoMo: Momentum Models for Adaptive Learning Rates"
    (2024), Algorithm 3 and Lemma 3.1.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> opt = lossjax.momo_adam(learning_rate=0.1)
      >>> w = jnp.array([1.0, 2.0, 3.0])
      >>> value, g = jax.value_and_grad(f)(w)
      >>> u, _ = opt.update(g, opt.init(w), w, value=value)
      >>> w + u  # τ = lr/(1 − b1): Adam's first step, w − 0.1·sign(g)
      Array([0.9, 1.9, 2.9], dtype=float32)
    """
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("weight_decay", weight_decay)

    # v/(1 − b2ᵗ) as v·(1/(1 − b2ᵗ)): one reciprocal per step, a product per element (XLA
    # makes optax's v/c the same product; a per-element divide is several times slower)
    def average_leaf(g, m, v, w, inv_c2):
        g32, w32 = upcast(g), upcast(w)
        m32 = b1 * upcast(m) + (1 - b1) * g32
        v32 = b2 * upcast(v) + (1 - b2) * g32 * g32
        precond = jnp.sqrt(v32 * inv_c2.astype(g32.dtype)) + eps
        return (m32.astype(m.dtype), v32.astype(v.dtype), jnp.vdot(g32, w32),
                jnp.vdot(m32, m32 / precond), jnp.vdot(m32, w32))

    def step_leaf(m, v, w, inv_c2, tau, shrink):
        w32 = upcast(w)
        precond = jnp.sqrt(upcast(v) * inv_c2.astype(w32.dtype)) + eps
        w_new = (w32 - tau.astype(w32.dtype) * upcast(m) / precond) / shrink.astype(w32.dtype)
        return (as_update(w_new - w32, w),)

    average = per_leaf(average_leaf, 5)
    step = per_leaf(step_leaf, 1)

    def init(params):
        dtype = _lowest_dtype(params)
        return MomoAdamState(jax.tree.map(full_like, params), jax.tree.map(full_like, params),
                             jnp.zeros([], dtype), jnp.zeros([], dtype),
                             jnp.asarray(lower_bound, dtype),
                             jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, *, value=None, **extra_args):
        del extra_args
        _check_update_args("momo_adam", params, value)
        # an integer leaf (float0 gradient) adds nothing and gets a zero update
        updates, params = without_float0(updates), trained_leaves(updates, params)
        dtype = state.barf.dtype
        count = increment_count(state.count)
        c1 = bias_correction_factor(b1, count, dtype)
        c2 = bias_correction_factor(b2, count, dtype)
        barf = b1 * state.barf + (1 - b1) * jnp.asarray(value, dtype)
        inv_c2 = 1 / c2
        m, v, gw, mdm, mw = average((updates, state.exp_avg, state.exp_avg_sq, params),
                                    (inv_c2,))
        gamma = b1 * state.gamma + (1 - b1) * _total(gw).astype(dtype)
        norm_sq, iprod = _total(mdm).astype(dtype), _total(mw).astype(dtype)
        alpha = _rate(learning_rate, state.count, dtype)
        tau, shrink = _step_size(alpha, weight_decay, barf, gamma, iprod, norm_sq, state.lb,
                                 lower_bound, adapt_lower_bound, c1)
        (out,) = step((m, v, params), (inv_c2, tau, shrink))
        lb = state.lb
        if adapt_lower_bound:
            lb = jnp.maximum(((barf + iprod - gamma) - 0.5 * tau * norm_sq) / c1, lower_bound)
        return out, MomoAdamState(m, v, barf, gamma, lb.astype(dtype), count)

    return optax.GradientTransformationExtraArgs(init, update)
