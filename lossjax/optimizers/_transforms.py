"""The public basic transforms the optimizers are chained from.

Each returns an ``optax.GradientTransformation`` whose state is a NamedTuple of arrays
shaped like the parameters (so it jits, shards like the parameters, and checkpoints). The
per-leaf arithmetic and its dtype rules live in :mod:`lossjax.optimizers._machinery`:
moments are computed in at least float32 and cast back to the stored dtype (optax #1755),
and each per-leaf function is traced once per distinct leaf shape and dtype. Everything
stays elementwise, so under ``jit`` XLA fuses a chain (e.g. Adam, the learning rate and
``optax.apply_updates``) into one loop per output array, and a sharded state stays sharded
like its parameters, with no gather.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossjax._validation import check_in_range, check_non_negative, check_positive
from lossjax.optimizers._machinery import (
    Array,
    ScalarOrSchedule,
    TraceState,
    abs_sq,
    adam_moments,
    as_update,
    bias_correction_factor,
    check_moment_hyperparameters,
    ema_of_squares,
    first_moment_estimate,
    full_like,
    increment_count,
    is_float0,
    may_be_zero,
    moment_corrections,
    per_leaf,
    root_of_corrected,
    safe_div,
    scalar_dtype,
    scalar_rate,
    scale_by_constant,
    scale_leaf,
    upcast,
)


class ScaleByAdamState(NamedTuple):
    """``count``: steps taken (int32); ``mu``, ``nu``: first and second moments."""

    count: Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam's direction: ``m̂ / (√(v̂ + eps_root) + eps)``.

    ``m ← b1·m + (1 − b1)·g``, ``v ← b2·v + (1 − b2)·g²``, ``m̂ = m/(1 − b1ᵗ)``,
    ``v̂ = v/(1 − b2ᵗ)``; the bias corrections ``1 − bᵗ`` are scalars computed once per step
    (as ``−expm1(t·log b)``, so a ``b2`` that rounds to 1.0 in float32 still works).
    ``nesterov=True`` is NAdam: ``m̂ = b1·m/(1 − b1ᵗ⁺¹) + (1 − b1)·g/(1 − b1ᵗ)`` (Dozat's
    form, as optax; PyTorch's ``NAdam`` adds a momentum-decay schedule ``ψ`` on top).

    Args:
      b1, b2: moment decay rates in ``[0, 1)``.
      eps: ``>= 0``, added to ``√v̂`` (Keras adds it to ``√v`` before bias correction).
        With ``eps = 0`` a zero second moment gives a zero step, not NaN.
      eps_root: ``>= 0``, added to ``v̂`` inside the square root.
      mu_dtype: dtype to store the first moment in (e.g. ``jnp.bfloat16`` to save memory);
        ``None`` keeps the parameters' dtype. The update is computed in float32 from the
        stored moment and only the new stored copy is rounded (optax also rounds
        ``b1·m`` to ``mu_dtype`` first, so its numbers differ slightly here).
      nesterov: use Nesterov momentum (NAdam).
      nu_dtype: dtype to store the second moment in (``None``: the parameters'); as for
        ``mu_dtype``, the arithmetic runs in float32 and only the stored copy is rounded.
        ``mu_dtype=nu_dtype=jnp.bfloat16`` stores 4 bytes of state per parameter.

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2014); Dozat,
    "Incorporating Nesterov Momentum into Adam" (2016).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_adam()
      >>> direction, _ = tx.update(jnp.array([0.5, -2.0]), tx.init(jnp.zeros(2)))
      >>> direction
      Array([ 1., -1.], dtype=float32)
    """
    check_moment_hyperparameters(b1, b2, eps, eps_root)
    guard = may_be_zero(eps) and may_be_zero(eps_root)

    def leaf(g, m, v, c1, c1_next, c2):
        g32, m32, v32 = adam_moments(g, m, v, b1, b2)
        m_hat = first_moment_estimate(m32, g32, b1, c1, c1_next, nesterov)
        denominator = root_of_corrected(v32, c2, eps_root) + eps
        direction = safe_div(m_hat, denominator, guard)
        return as_update(direction, g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = per_leaf(leaf, 3)

    def init(params):
        mu = jax.tree.map(lambda p: full_like(p, dtype=mu_dtype), params)
        nu = jax.tree.map(lambda p: full_like(p, dtype=nu_dtype), params)
        return ScaleByAdamState(jnp.zeros([], jnp.int32), mu, nu)

    def update(updates, state, params=None):
        del params
        count = increment_count(state.count)
        scalars = moment_corrections(b1, b2, count, scalar_dtype(updates))
        direction, mu, nu = apply((updates, state.mu, state.nu), scalars)
        return direction, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def trace(
    decay: float, nesterov: bool = False, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    """Heavy-ball momentum: ``b ← g + μ·b``; the update is ``b`` (Nesterov: ``g + μ·b``).

    ``decay`` is ``μ >= 0`` (optax's name and order); ``accumulator_dtype`` stores ``b`` in
    another dtype (e.g. ``jnp.bfloat16``; ``None``: the parameters'). References: Polyak
    (1964); Sutskever et al., "On the importance of initialization and momentum in deep
    learning" (2013).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.trace(0.5)
      >>> state = tx.init(jnp.zeros(1))
      >>> _, state = tx.update(jnp.array([1.0]), state)
      >>> tx.update(jnp.array([1.0]), state)[0]
      Array([1.5], dtype=float32)
    """
    check_non_negative("decay", decay)

    def leaf(g, b):
        g32 = upcast(g)
        new = g32 + decay * upcast(b)
        out = g32 + decay * new if nesterov else new
        return as_update(out, g), new.astype(b.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        return TraceState(jax.tree.map(lambda p: full_like(p, dtype=accumulator_dtype), params))

    def update(updates, state, params=None):
        del params
        updates, new_trace = apply((updates, state.trace))
        return updates, TraceState(new_trace)

    return optax.GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """``nu``: the running mean of ``|g|²`` (optax's layout)."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """``count``: steps taken (int32); ``nu``: the running mean of ``|g|²``."""

    count: Array
    nu: Any


class ScaleByRStdDevState(NamedTuple):
    """``mu``, ``nu``: the running means of ``g`` and ``|g|²`` (centered RMSProp)."""

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """``count``: steps taken (int32); ``mu``, ``nu``: the running means of ``g``, ``|g|²``."""

    count: Array
    mu: Any
    nu: Any


def scale_by_rms(
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
    *,
    centered: bool = False,
) -> optax.GradientTransformation:
    """RMSProp's direction: ``g / √(v + eps)`` with ``v ← d·v + (1 − d)·|g|²``.

    ``eps_in_sqrt=False`` gives ``g / (√v + eps)``. ``centered`` also tracks
    ``m ← d·m + (1 − d)·g`` and uses the variance ``v − |m|²`` in place of ``v`` (optax's
    ``scale_by_stddev``). ``nu`` starts at ``initial_scale``; ``bias_correction`` divides
    ``v`` (and ``m``) by ``1 − dᵗ`` as Adam does. With ``eps = 0`` a zero ``v`` gives a zero
    step, not NaN. Complex gradients accumulate ``|g|²`` (as optax). The state is optax's:
    :class:`ScaleByRmsState` (``nu``), with ``count`` when ``bias_correction``
    (``ScaleByRmsWithCountState``), with ``mu`` when ``centered`` (``ScaleByRStdDevState``,
    ``ScaleByRStdDevWithCountState``).

    References: Hinton, Lecture 6e of "Neural Networks for Machine Learning" (2012);
    Graves, "Generating Sequences With Recurrent Neural Networks" (2013) for centering.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> tx = lossjax.scale_by_rms(decay=0.75, eps=0.0)
      >>> tx.update(jnp.array([2.0]), tx.init(jnp.zeros(1)))[0]
      Array([2.], dtype=float32)
    """
    check_in_range("decay", decay, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("initial_scale", initial_scale)
    guard = may_be_zero(eps)

    def scale(g32, second):
        if eps_in_sqrt:
            return safe_div(g32, jnp.sqrt(second + eps), guard)
        return safe_div(g32, jnp.sqrt(second) + eps, guard)

    def corrected(x, correction):
        return x / correction.astype(x.dtype) if bias_correction else x

    def leaf(g, v, correction):
        g32 = upcast(g)
        v32 = ema_of_squares(upcast(v), g32, decay)
        return as_update(scale(g32, corrected(v32, correction)), g), v32.astype(v.dtype)

    def centered_leaf(g, m, v, correction):
        g32 = upcast(g)
        m32 = decay * upcast(m) + (1.0 - decay) * g32
        v32 = ema_of_squares(upcast(v), g32, decay)
        variance = corrected(v32, correction) - abs_sq(corrected(m32, correction))
        return as_update(scale(g32, variance), g), m32.astype(m.dtype), v32.astype(v.dtype)

    apply = per_leaf(centered_leaf, 3) if centered else per_leaf(leaf, 2)

    def make_state(count, mu, nu):
        if centered:
            if bias_correction:
                return ScaleByRStdDevWithCountState(count, mu, nu)
            return ScaleByRStdDevState(mu, nu)
        return ScaleByRmsWithCountState(count, nu) if bias_correction else ScaleByRmsState(nu)

    def init(params):
        mu = jax.tree.map(full_like, params) if centered else None
        nu = jax.tree.map(lambda p: full_like(p, initial_scale), params)
        return make_state(jnp.zeros([], jnp.int32), mu, nu)

    def update(updates, state, params=None):
        del params
        dtype = scalar_dtype(updates)
        count = increment_count(state.count) if bias_correction else None
        correction = (bias_correction_factor(decay, count, dtype) if count is not None
                      else jnp.ones([], dtype))
        if centered:
            updates, mu, nu = apply((updates, state.mu, state.nu), (correction,))
            return updates, make_state(count, mu, nu)
        updates, nu = apply((updates, state.nu), (correction,))
        return updates, make_state(count, None, nu)

    return optax.GradientTransformation(init, update)


class ScaleByRssState(NamedTuple):
    """``sum_of_squares``: ``s``, the running sum of ``|g|²`` (optax's name and layout)."""

    sum_of_squares: Any


# the name lossjax used first; the same class
ScaleBySumOfSquaresState = ScaleByRssState


def scale_by_sum_of_squares(
    initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adagrad's direction: ``g / √(s + eps)`` with ``s ← s + g²`` (0 where ``s = 0``).

    ``s`` starts at ``initial_accumulator_value``.
    References: Duchi et al., "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization" (2011).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.scale_by_sum_of_squares(initial_accumulator_value=0.0)
      >>> g = jnp.array([3.0, -4.0])
      >>> u, state = opt.update(g, opt.init(g))
      >>> u  # g / √(g²)
      Array([ 1., -1.], dtype=float32)
      >>> u, state = opt.update(g, state)
      >>> u  # g / √(2g²) = ±1/√2
      Array([ 0.70711, -0.70711], dtype=float32)
    """
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("eps", eps)

    def leaf(g, s):
        g32 = upcast(g)
        s32 = upcast(s) + abs_sq(g32)
        out = jnp.where(s32 > 0, g32 * jax.lax.rsqrt(s32 + eps), 0.0)
        return as_update(out, g), s32.astype(s.dtype)

    apply = per_leaf(leaf, 2)

    def init(params):
        return ScaleByRssState(
            jax.tree.map(lambda p: full_like(p, initial_accumulator_value), params))

    def update(updates, state, params=None):
        del params
        updates, sums = apply((updates, state.sum_of_squares))
        return updates, ScaleByRssState(sums)

    return optax.GradientTransformation(init, update)


class LearningRateState(NamedTuple):
    """A learning rate held in a state (``count``: steps taken; ``learning_rate``: the rate).

    Kept for states built by earlier lossjax versions and by :func:`muon` (for now); the
    optimizers built by :func:`scale_by_learning_rate` hold no rate (optax's layout)."""

    count: Array
    learning_rate: Array


# optax's state for a scheduled rate: the class itself, so states (and checkpoints) match.
ScaleByScheduleState = optax.ScaleByScheduleState


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> optax.GradientTransformation:
    """Descend: ``u ← −lr·u``, with ``lr`` a float or ``schedule(step)``, step = 0, 1, ...

    As in optax, a float rate is a constant of the compiled step (XLA folds it into the
    neighbouring arithmetic; it is multiplied in the updates' dtype, so float64 updates
    are scaled in float64) and the state is empty; a schedule keeps the step count in a
    ``ScaleByScheduleState`` (optax's class). To change a rate between steps without
    recompiling, wrap the optimizer with :func:`inject_hyperparams` and use
    :func:`set_learning_rate`. ``flip_sign=False`` scales by ``+lr``; ``learning_rate=None``
    leaves the updates as they are. A float rate must be >= 0 (``ValueError``); a
    schedule's values are not checked.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> g = jnp.array([1.0, -2.0])
      >>> opt = lossjax.scale_by_learning_rate(0.1)
      >>> opt.update(g, opt.init(g))[0]
      Array([-0.1,  0.2], dtype=float32)
      >>> opt = lossjax.scale_by_learning_rate(lambda count: 0.1 / (count + 1))
      >>> u, state = opt.update(g, opt.init(g))
      >>> u, state = opt.update(g, state)  # step 1: lr = 0.1 / 2
      >>> u
      Array([-0.05,  0.1 ], dtype=float32)
    """
    sign = -1.0 if flip_sign else 1.0
    if learning_rate is None:
        return optax.identity()
    if not callable(learning_rate):
        check_non_negative("learning_rate", learning_rate)
        return scale_by_constant(sign * scalar_rate(learning_rate)
                                 if isinstance(learning_rate, jax.Array | np.ndarray)
                                 else sign * learning_rate)
    schedule = learning_rate
    apply = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        del params
        return ScaleByScheduleState(jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        rate = scalar_rate(jnp.asarray(schedule(state.count), scalar_dtype(updates)))
        (updates,) = apply((updates,), (sign * rate,))
        return updates, ScaleByScheduleState(increment_count(state.count))

    return optax.GradientTransformation(init, update)


# optax's name for clip_by_global_norm's (empty) state: the same class, so states match.
ClipByGlobalNormState = optax.EmptyState


def _scaled_norm(leaves: list[Array]) -> Array:
    """``s·√(Σ (x/s)²)`` with ``s = max |x|``: no ``x²`` overflows (or underflows)."""
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in leaves]))
    safe = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1)
    return safe * jnp.sqrt(sum(jnp.sum(abs_sq(x / safe)) for x in leaves))


def global_norm(tree: Any) -> Array:
    """``√(Σ_leaves Σ x²)`` in float32 at least; under sharding an all-reduce of a scalar.

    The plain sum of squares overflows float32 for entries near 1e19 (an inf norm would
    make ``clip_by_global_norm`` return zeros); only then, the norm is recomputed scaled by
    ``max |x|``, which is finite for any finite tree. ``float0`` leaves count as zeros.

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> lossjax.global_norm({"a": jnp.array([3e20]), "b": jnp.array([4e20])})
      Array(5.e+20, dtype=float32)
    """
    leaves = [upcast(x) for x in jax.tree.leaves(tree) if not is_float0(x) and x.size]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    plain = jnp.sqrt(sum(jnp.sum(abs_sq(x)) for x in leaves))
    return jax.lax.cond(jnp.isinf(plain), _scaled_norm, lambda _: plain, leaves)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Rescale all updates together so that their global norm is at most ``max_norm``.

    ``u ← u · max_norm / max(‖u‖, max_norm)``: an all-zero gradient passes through as zeros
    (no 0/0, optax #1752). ``max_norm`` must be > 0 (``ValueError`` otherwise).
    References: Pascanu et al., "On the difficulty of training recurrent neural networks"
    (2013).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> clip = lossjax.clip_by_global_norm(1.0)
      >>> g = jnp.array([3.0, 4.0])  # norm 5: scaled by 1/5
      >>> clip.update(g, clip.init(g))[0]
      Array([0.6, 0.8], dtype=float32)
      >>> clip.update(0.1 * g, clip.init(g))[0]  # norm 0.5 <= 1: unchanged
      Array([0.3, 0.4], dtype=float32)
    """
    check_positive("max_norm", max_norm)
    apply = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        del params
        return ClipByGlobalNormState()

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        factor = max_norm / jnp.maximum(norm, max_norm)
        (updates,) = apply((updates,), (factor,))
        return updates, state

    return optax.GradientTransformation(init, update)
