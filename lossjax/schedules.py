"""Learning-rate schedules: functions ``step -> learning rate`` (jit-friendly).

Any ``learning_rate`` argument in lossjax takes a float or one of these. The numbers
equal optax's schedules of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from lossjax._validation import check_in_range, check_non_negative, check_positive

Schedule = Callable[[jax.Array], jax.Array]

__all__ = [
    "constant",
    "cosine_decay",
    "exponential_decay",
    "piecewise_constant",
    "warmup_cosine_decay",
]


def constant(value: float) -> Schedule:
    """``lr(t) = value``."""
    check_non_negative("value", value)
    return lambda step: jnp.full([], value, jnp.float32)


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    *,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """``lr(t) = init · rate^((t − begin)/steps)`` for ``t > begin`` (``init`` before).

    ``staircase`` floors the exponent; ``end_value`` bounds the result (below for
    ``rate < 1``, above for ``rate > 1``).
    """
    check_non_negative("init_value", init_value)
    check_positive("transition_steps", transition_steps)
    check_positive("decay_rate", decay_rate)
    check_non_negative("transition_begin", transition_begin)

    def schedule(step):
        t = jnp.maximum(jnp.asarray(step, jnp.float32) - transition_begin, 0.0)
        exponent = t / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = init_value * jnp.power(decay_rate, exponent)
        if end_value is not None:
            value = (jnp.maximum if decay_rate < 1 else jnp.minimum)(value, end_value)
        return value.astype(jnp.float32)

    return schedule


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0,
                 exponent: float = 1.0) -> Schedule:
    """``lr(t) = init·((1 − α)·c(t)^p + α)``, ``c(t) = ½(1 + cos(π·min(t, T)/T))``.

    References: Loshchilov & Hutter, "SGDR" (2017).
    """
    check_non_negative("init_value", init_value)
    check_positive("decay_steps", decay_steps)
    check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)

    def schedule(step):
        t = jnp.minimum(jnp.asarray(step, jnp.float32), decay_steps)
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * t / decay_steps))
        return (init_value * ((1.0 - alpha) * cosine**exponent + alpha)).astype(jnp.float32)

    return schedule


def warmup_cosine_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
) -> Schedule:
    """Linear warm-up from ``init`` to ``peak`` over ``warmup_steps``, then cosine decay
    to ``end_value`` at ``decay_steps`` (counted from step 0, warm-up included)."""
    check_non_negative("init_value", init_value)
    check_non_negative("peak_value", peak_value)
    check_non_negative("warmup_steps", warmup_steps)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps ({decay_steps}) must be larger than warmup_steps ({warmup_steps})"
        )
    cosine_steps = decay_steps - warmup_steps

    def schedule(step):
        t = jnp.asarray(step, jnp.float32)
        warm = init_value + (peak_value - init_value) * t / max(warmup_steps, 1)
        s = jnp.clip(t - warmup_steps, 0.0, cosine_steps)
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * s / cosine_steps))
        decayed = end_value + (peak_value - end_value) * cosine
        return jnp.where(t < warmup_steps, warm, decayed).astype(jnp.float32)

    return schedule


def piecewise_constant(init_value: float, boundaries_and_scales: Mapping[int, float]) -> Schedule:
    """``lr(t) = init · Π_{b ≤ t} scale_b``: multiply by ``scale_b`` once step ``b`` is reached."""
    check_non_negative("init_value", init_value)
    for boundary, scale in boundaries_and_scales.items():
        check_non_negative(f"boundaries_and_scales[{boundary}]", scale)
    items = sorted(boundaries_and_scales.items())

    def schedule(step):
        t = jnp.asarray(step)
        value = jnp.asarray(init_value, jnp.float32)
        for boundary, scale in items:
            value = jnp.where(t >= boundary, value * scale, value)
        return value

    return schedule
