"""Reduce the learning rate when the loss stops improving (Keras' ``ReduceLROnPlateau``
callback, PyTorch's ``lr_scheduler.ReduceLROnPlateau``), as a gradient transformation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossjax._validation import check_in_range, check_non_negative, concrete_value
from lossjax.optimizers._machinery import (
    increment_count,
    per_leaf,
    scalar_dtype,
    scale_leaf,
)

Array = jax.Array


class ReduceLROnPlateauState(NamedTuple):
    """``scale``: the current multiplier; ``best_value``: the best averaged loss so far;
    ``plateau_count``: averages since the last improvement; ``cooldown_count``: averages
    left in the cool-down; ``count``: values in the current average; ``avg_value``: the
    running mean of the values (optax's field names)."""

    scale: Array
    best_value: Array
    plateau_count: Array
    cooldown_count: Array
    count: Array
    avg_value: Array


def _check_whole(name: str, value: object, low: int) -> None:
    v = concrete_value(value)
    if v is not None and not (v >= low and float(v).is_integer()):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: int = 0,
    accumulation_size: int = 1,
    min_scale: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
    """Multiply the updates by a ``scale`` that drops by ``factor`` when the loss stalls.

    Chain it after an optimizer and pass the loss to ``update`` as ``value``::

        opt = optax.chain(lossjax.adam(1e-3), lossjax.reduce_on_plateau(patience=5))
        updates, state = opt.update(grads, state, params, value=loss)

    The values are averaged over ``accumulation_size`` calls; each average ``a`` is compared
    with the best so far: it improves when ``a < (1 − rtol)·best − atol``. After
    ``patience`` averages without improvement, ``scale ← max(scale·factor, min_scale)`` and
    the count restarts; then ``cooldown`` averages pass before counting resumes.

    Args:
      factor: in ``(0, 1)``.
      patience: averages without improvement before a reduction (integer >= 1).
      rtol, atol: relative (in ``[0, 1]``) and absolute (``>= 0``) improvement thresholds;
        not both 0.
      cooldown: averages to wait after a reduction (integer >= 0).
      accumulation_size: values per average (integer >= 1): 1 when ``value`` is a
        validation loss, more when it is a noisy mini-batch loss.
      min_scale: the scale never drops below this (``>= 0``).

    Differences: Keras and PyTorch act once per epoch on a monitored metric and change the
    optimizer's rate; this acts on every ``update`` call (so ``patience`` counts averages
    of ``accumulation_size`` calls) and scales the updates. Keras' ``min_delta`` is
    ``atol``; PyTorch's default ``threshold_mode="rel"`` is ``rtol``; PyTorch's ``min_lr``
    is ``min_scale`` times the base rate. Only ``mode="min"`` (lower is better).

    Examples:
      >>> import jax.numpy as jnp
      >>> import lossjax
      >>> opt = lossjax.reduce_on_plateau(factor=0.5, patience=2)
      >>> g = jnp.ones(2); state = opt.init(g)
      >>> for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]:
      ...     updates, state = opt.update(g, state, value=loss)
      ...     print(float(state.scale), end=" ")
      1.0 1.0 1.0 0.5 0.5 0.25
    """
    check_in_range("factor", factor, 0.0, 1.0)
    if not factor > 0:
        raise ValueError(f"factor must be in (0, 1), got {factor!r}")
    _check_whole("patience", patience, 1)
    check_in_range("rtol", rtol, 0.0, 1.0, high_inclusive=True)
    check_non_negative("atol", atol)
    if rtol == 0 and atol == 0:
        raise ValueError("rtol and atol are both 0: at least one must be positive")
    _check_whole("cooldown", cooldown, 0)
    _check_whole("accumulation_size", accumulation_size, 1)
    check_non_negative("min_scale", min_scale)
    scale_updates = per_leaf(scale_leaf, 1, trace_once=False)

    def init(params):
        value_dtype = scalar_dtype(params)
        # a fresh buffer per field: a step that donates the state must not see one twice
        def zero():
            return jnp.zeros([], jnp.int32)

        return ReduceLROnPlateauState(
            scale=jnp.ones([], value_dtype), best_value=jnp.asarray(jnp.inf, value_dtype),
            plateau_count=zero(), cooldown_count=zero(), count=zero(),
            avg_value=jnp.zeros([], value_dtype))

    def judge(state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        """Compare a completed average with the best and update the scale."""
        improved = state.avg_value < (1 - rtol) * state.best_value - atol
        best = jnp.where(improved, state.avg_value, state.best_value)
        plateau = jnp.where(improved, 0, increment_count(state.plateau_count))
        cooling = state.cooldown_count > 0
        reduce = ~cooling & (plateau == patience)
        scale = jnp.where(reduce, state.scale * factor, state.scale)
        scale = jnp.where(cooling, state.scale, jnp.maximum(scale, min_scale))
        plateau = jnp.where(cooling | reduce, 0, plateau)
        cooldown_count = jnp.where(cooling, state.cooldown_count - 1,
                                   jnp.where(reduce, cooldown, 0))
        return ReduceLROnPlateauState(
            scale.astype(state.scale.dtype), best.astype(state.best_value.dtype),
            plateau.astype(jnp.int32), cooldown_count.astype(jnp.int32),
            jnp.zeros([], jnp.int32), jnp.zeros([], state.avg_value.dtype))

    def update(updates, state, params=None, *, value, **extra_args):
        del params, extra_args
        count = increment_count(state.count)
        dtype = state.avg_value.dtype
        average = (state.count * state.avg_value + jnp.asarray(value, dtype)) / count
        state = state._replace(avg_value=average.astype(dtype), count=count)
        done = count == accumulation_size
        judged = judge(state)
        state = jax.tree.map(lambda new, old: jnp.where(done, new, old), judged, state)
        (updates,) = scale_updates((updates,), (state.scale,))
        return updates, state

    # optax types ``update`` as taking optional extra args; this one requires ``value``.
    return optax.GradientTransformationExtraArgs(init, update)  # pyright: ignore[reportArgumentType]
