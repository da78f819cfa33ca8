"""Small gradient transformations that the optimizers are chained from.

Each returns an ``optax.GradientTransformation`` whose state is a NamedTuple of arrays
shaped like the parameters (so it jits, shards like the parameters, and checkpoints).
Moment arithmetic runs in at least float32 and is cast back to the stored dtype, so half
precision parameters never meet an ``eps`` that underflows to 0 (optax #1755).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative, check_positive

Array = jax.Array
Schedule = Callable[[Array], Array]
ScalarOrSchedule = float | Array | Schedule


def _f32(x: Array) -> Array:
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _full(p: Any, value: float = 0.0, dtype: Any = None) -> Array:
    """An array shaped like ``p`` (an array or a ``jax.ShapeDtypeStruct``)."""
    return jnp.full(p.shape, value, dtype or p.dtype)


def _increment(count: Array) -> Array:
    """``count + 1`` that saturates instead of wrapping around at the int32 limit."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _bias_correction(decay: float, count: Array) -> Array:
    """``1 − decay^count``, a scalar computed once per step, not per leaf."""
    return 1.0 - decay**count


class ScaleByAdamState(NamedTuple):
    count: Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    """Adam's direction: ``m̂ / (√v̂ + eps)``.

    ``m ← b1·m + (1 − b1)·g``, ``v ← b2·v + (1 − b2)·g²``, ``m̂ = m/(1 − b1ᵗ)``,
    ``v̂ = v/(1 − b2ᵗ)``. ``mu_dtype`` stores the first moment in another dtype (e.g.
    bfloat16) to save memory. References: Kingma & Ba, "Adam" (2014).
    """
    check_in_range("b1", b1, 0.0, 1.0)
    check_in_range("b2", b2, 0.0, 1.0)
    check_non_negative("eps", eps)

    def init(params):
        mu = jax.tree.map(lambda p: _full(p, dtype=mu_dtype), params)
        nu = jax.tree.map(_full, params)
        return ScaleByAdamState(jnp.zeros([], jnp.int32), mu, nu)

    def update(updates, state, params=None):
        del params
        count = _increment(state.count)
        c1, c2 = _bias_correction(b1, count), _bias_correction(b2, count)

        def leaf(g, m, v):
            g32 = _f32(g)
            m32 = b1 * _f32(m) + (1.0 - b1) * g32
            v32 = b2 * _f32(v) + (1.0 - b2) * jnp.square(g32)
            direction = (m32 / c1.astype(m32.dtype)) / (jnp.sqrt(v32 / c2.astype(v32.dtype)) + eps)
            return direction.astype(g.dtype), m32.astype(m.dtype), v32.astype(v.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        treedef = jax.tree.structure(updates)
        direction, mu, nu = (treedef.unflatten(x) for x in zip(*treedef.flatten_up_to(out)))
        return direction, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


class TraceState(NamedTuple):
    trace: Any


def trace(momentum: float, *, nesterov: bool = False) -> optax.GradientTransformation:
    """Heavy-ball momentum: ``b ← g + μ·b``; the update is ``b`` (or ``g + μ·b`` with Nesterov)."""
    check_non_negative("momentum", momentum)

    def init(params):
        return TraceState(jax.tree.map(_full, params))

    def update(updates, state, params=None):
        del params
        new_trace = jax.tree.map(
            lambda g, b: (_f32(g) + momentum * _f32(b)).astype(b.dtype), updates, state.trace
        )
        if nesterov:
            updates = jax.tree.map(
                lambda g, b: (_f32(g) + momentum * _f32(b)).astype(g.dtype), updates, new_trace
            )
        else:
            updates = jax.tree.map(lambda g, b: b.astype(g.dtype), updates, new_trace)
        return updates, TraceState(new_trace)

    return optax.GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    mu: Any
    nu: Any


def scale_by_rms(
    decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0, *, centered: bool = False
) -> optax.GradientTransformation:
    """RMSProp's direction: ``g / √(v + eps)`` with ``v ← d·v + (1 − d)·g²``.

    ``centered`` subtracts the squared running mean: ``g / √(v − m² + eps)``.
    References: Hinton, Lecture 6e of "Neural Networks for Machine Learning" (2012).
    """
    check_in_range("decay", decay, 0.0, 1.0)
    check_non_negative("eps", eps)
    check_non_negative("initial_scale", initial_scale)

    def init(params):
        mu = jax.tree.map(_full, params) if centered else None
        nu = jax.tree.map(lambda p: _full(p, initial_scale), params)
        return ScaleByRmsState(mu, nu)

    def update(updates, state, params=None):
        del params
        nu = jax.tree.map(
            lambda g, v: (decay * _f32(v) + (1 - decay) * jnp.square(_f32(g))).astype(v.dtype),
            updates, state.nu)
        mu = None
        denominator = nu
        if centered:
            mu = jax.tree.map(
                lambda g, m: (decay * _f32(m) + (1 - decay) * _f32(g)).astype(m.dtype),
                updates, state.mu)
            denominator = jax.tree.map(lambda v, m: _f32(v) - jnp.square(_f32(m)), nu, mu)
        updates = jax.tree.map(
            lambda g, v: (_f32(g) / jnp.sqrt(_f32(v) + eps)).astype(g.dtype), updates, denominator
        )
        return updates, ScaleByRmsState(mu, nu)

    return optax.GradientTransformation(init, update)


class ScaleBySumOfSquaresState(NamedTuple):
    sum_of_squares: Any


def scale_by_sum_of_squares(
    initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adagrad's direction: ``g / √(s + eps)`` with ``s ← s + g²`` (0 where ``s = 0``).

    References: Duchi et al., "Adaptive Subgradient Methods" (2011).
    """
    check_non_negative("initial_accumulator_value", initial_accumulator_value)
    check_non_negative("eps", eps)

    def init(params):
        return ScaleBySumOfSquaresState(
            jax.tree.map(lambda p: _full(p, initial_accumulator_value), params))

    def update(updates, state, params=None):
        del params
        sums = jax.tree.map(lambda g, s: (_f32(s) + jnp.square(_f32(g))).astype(s.dtype),
                            updates, state.sum_of_squares)

        def scale(g, s):
            s = _f32(s)
            return jnp.where(s > 0, _f32(g) * jax.lax.rsqrt(s + eps), 0.0).astype(g.dtype)

        return jax.tree.map(scale, updates, sums), ScaleBySumOfSquaresState(sums)

    return optax.GradientTransformation(init, update)


class LearningRateState(NamedTuple):
    """``count``: steps taken; ``learning_rate``: the current rate (ignored with a schedule)."""

    count: Array
    learning_rate: Array


def scale_by_learning_rate(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    """Descend: ``u ← −lr·u``, with ``lr`` a float (held in the state) or ``schedule(step)``.

    A float rate lives in the state as an array, so :func:`set_learning_rate` changes it
    during training without recompiling the step.
    """
    schedule = learning_rate if callable(learning_rate) else None
    if schedule is None:
        check_non_negative("learning_rate", learning_rate)

    def init(params):
        del params
        initial = 0.0 if schedule is not None else learning_rate
        return LearningRateState(jnp.zeros([], jnp.int32), jnp.asarray(initial, jnp.float32))

    def update(updates, state, params=None):
        del params
        lr = state.learning_rate if schedule is None else jnp.asarray(schedule(state.count),
                                                                        jnp.float32)
        updates = jax.tree.map(lambda u: (-lr * _f32(u)).astype(u.dtype), updates)
        return updates, LearningRateState(_increment(state.count), state.learning_rate)

    return optax.GradientTransformation(init, update)


def set_learning_rate(opt_state: Any, learning_rate: float | Array) -> Any:
    """Return ``opt_state`` with every held (non-schedule) learning rate replaced.

    The rate is data in the state, so the jitted step does not recompile::

        state = lossjax.set_learning_rate(state, 1e-4)
    """
    check_non_negative("learning_rate", learning_rate)

    def replace(node):
        if isinstance(node, LearningRateState):
            return node._replace(learning_rate=jnp.asarray(learning_rate, jnp.float32))
        return node

    return jax.tree.map(replace, opt_state, is_leaf=lambda n: isinstance(n, LearningRateState))


class ClipByGlobalNormState(NamedTuple):
    pass


def global_norm(tree: Any) -> Array:
    """``√(Σ_leaves Σ x²)`` in float32 at least; under sharding an all-reduce of a scalar."""
    squares = [jnp.sum(jnp.square(_f32(x))) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(squares)) if squares else jnp.zeros([], jnp.float32)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Rescale all updates together so their global norm is at most ``max_norm``.

    ``u ← u · max_norm / max(‖u‖, max_norm)``: an all-zero gradient passes through as zeros
    (no 0/0, optax #1752). References: Pascanu et al., "On the difficulty of training
    recurrent neural networks" (2013).
    """
    check_positive("max_norm", max_norm)

    def init(params):
        del params
        return ClipByGlobalNormState()

    def update(updates, state, params=None):
        del params
        norm = global_norm(updates)
        factor = max_norm / jnp.maximum(norm, max_norm)
        return jax.tree.map(lambda u: (_f32(u) * factor).astype(u.dtype), updates), state

    return optax.GradientTransformation(init, update)
