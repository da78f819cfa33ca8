"""Basic schedules: constant, polynomial, exponential and cosine decay, piecewise ones, and
:func:`join` to put schedules one after another.

A schedule maps the step ``t = 0, 1, ...`` (a Python int or a traced integer array) to a
float32 scalar; every one runs under ``jit`` and ``vmap``. Arguments are checked when the
schedule is built (``ValueError`` naming the argument); optax instead silently falls back
to a constant for some of the ones rejected here (a non-positive ``transition_steps``, a
zero ``decay_rate``, a negative ``transition_begin``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import jax
import jax.numpy as jnp

from lossjax._validation import check_in_range, check_non_negative, check_positive


class Schedule(Protocol):
    """The type of a schedule: a function of the step count returning a float32 scalar.

    Any function ``step -> scalar`` is one (no base class to inherit); every builder in
    :mod:`lossjax.schedules` returns one, and optimizers accept one wherever they take a
    learning rate.

    Examples:
      >>> import jax.numpy as jnp
      >>> from lossjax import schedules
      >>> s: schedules.Schedule = schedules.constant(0.1)
      >>> s(jnp.asarray(7))
      Array(0.1, dtype=float32)
    """

    def __call__(self, count: jax.Array, /) -> jax.Array: ...


def _steps(step) -> jax.Array:
    return jnp.asarray(step, jnp.float32)


def _f32(value) -> jax.Array:
    return jnp.asarray(value, jnp.float32)


def constant(value: float) -> Schedule:
    """``lr(t) = value``.

    Examples:
      >>> from lossjax import schedules
      >>> schedules.constant(0.1)(1000)
      Array(0.1, dtype=float32)
    """
    check_non_negative("value", value)
    return lambda step: jnp.full([], value, jnp.float32)


def polynomial(
    init_value: float,
    end_value: float,
    power: float,
    transition_steps: int,
    transition_begin: int = 0,
) -> Schedule:
    """Polynomial decay from ``init`` to ``end`` over ``transition_steps`` steps.

    ``lr(t) = (init − end)·(1 − s/T)^power + end`` with ``s = clip(t − begin, 0, T)``: the
    value is ``init`` until ``transition_begin`` and ``end`` from ``begin + T`` on.

    Args:
      init_value, end_value: the values at the start and the end of the transition.
      power: the exponent (1: linear; 2: quadratic, decaying fast at first).
      transition_steps: ``T > 0``.
      transition_begin: ``>= 0``, the step the transition starts at.

    Examples:
      >>> from lossjax import schedules
      >>> schedules.polynomial(1.0, 0.0, 2, 10)(5)  # (1 − 5/10)²
      Array(0.25, dtype=float32)
    """
    check_positive("transition_steps", transition_steps)
    check_non_negative("transition_begin", transition_begin)

    def schedule(step):
        s = jnp.clip(_steps(step) - transition_begin, 0.0, transition_steps)
        # (T − s)/T, not 1 − s/T: XLA may turn s/T into s·(1/T), and 1 − that can dip just
        # below 0 at s = T, where a fractional power gives NaN.
        remaining = (transition_steps - s) / transition_steps
        return _f32((init_value - end_value) * remaining**power + end_value)

    return schedule


def linear(
    init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """Linear ramp from ``init`` to ``end``: :func:`polynomial` with ``power = 1``.

    ``lr(t) = init + (end − init)·s/T``, ``s = clip(t − begin, 0, T)``.

    Examples:
      >>> from lossjax import schedules
      >>> schedules.linear(1.0, 0.0, 10)(3)
      Array(0.7, dtype=float32)
    """
    return polynomial(init_value, end_value, 1, transition_steps, transition_begin)


def exponential_decay(
    init_value: float,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """``lr(t) = init · rate^((t − begin)/steps)`` for ``t > begin`` (``init`` before).

    ``staircase`` floors the exponent; ``end_value`` bounds the result (below for
    ``rate < 1``, above for ``rate > 1``).

    Examples:
      >>> from lossjax import schedules
      >>> schedules.exponential_decay(1.0, 10, 0.5)(20)
      Array(0.25, dtype=float32)
    """
    check_non_negative("init_value", init_value)
    check_positive("transition_steps", transition_steps)
    check_positive("decay_rate", decay_rate)
    check_non_negative("transition_begin", transition_begin)

    def schedule(step):
        t = jnp.maximum(_steps(step) - transition_begin, 0.0)
        exponent = t / transition_steps
        if staircase:
            exponent = jnp.floor(exponent)
        value = init_value * jnp.power(decay_rate, exponent)
        if end_value is not None:
            value = (jnp.maximum if decay_rate < 1 else jnp.minimum)(value, end_value)
        return _f32(value)

    return schedule


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0,
                 exponent: float = 1.0) -> Schedule:
    """``lr(t) = init·((1 − α)·c(t)^p + α)``, ``c(t) = ½(1 + cos(π·min(t, T)/T))``.

    ``T = decay_steps > 0``; ``α`` in ``[0, 1]`` is the final fraction of ``init``;
    ``p = exponent``.

    References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts" (2017).

    Examples:
      >>> from lossjax import schedules
      >>> schedules.cosine_decay(1.0, 100, alpha=0.1)(50)  # 0.9·½ + 0.1
      Array(0.55, dtype=float32)
    """
    check_non_negative("init_value", init_value)
    check_positive("decay_steps", decay_steps)
    check_in_range("alpha", alpha, 0.0, 1.0, high_inclusive=True)

    # A float: a step count past int32 (1e10) must not reach jnp as a Python int.
    total = float(decay_steps)

    def schedule(step):
        t = jnp.minimum(_steps(step), total)
        cosine = 0.5 * (1.0 + jnp.cos(jnp.pi * t / total))
        return _f32(init_value * ((1.0 - alpha) * cosine**exponent + alpha))

    return schedule


def _checked_scales(boundaries_and_scales: Mapping[int, float] | None
                    ) -> list[tuple[int, float]]:
    items = sorted((boundaries_and_scales or {}).items())
    for boundary, scale in items:
        check_non_negative(f"boundaries_and_scales[{boundary}] (a scale)", scale)
        check_non_negative("boundaries_and_scales (a boundary)", boundary)
    return items


def piecewise_constant(
    init_value: float, boundaries_and_scales: Mapping[int, float] | None = None
) -> Schedule:
    """``lr(t) = init · Π_{b ≤ t} scale_b``: multiply by ``scale_b`` once step ``b`` is reached.

    Examples:
      >>> from lossjax import schedules
      >>> schedules.piecewise_constant(1.0, {10: 0.5, 20: 0.1})(15)
      Array(0.5, dtype=float32)
    """
    check_non_negative("init_value", init_value)
    items = _checked_scales(boundaries_and_scales)

    def schedule(step):
        t = jnp.asarray(step)
        value = _f32(init_value)
        for boundary, scale in items:
            value = jnp.where(t >= boundary, value * scale, value)
        return value

    return schedule


def _interpolate_linear(start, end, fraction):
    return start + (end - start) * fraction


def _interpolate_cosine(start, end, fraction):
    return end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * fraction))


def piecewise_interpolate(
    interpolate_type: str,
    init_value: float,
    boundaries_and_scales: Mapping[int, float] | None = None,
) -> Schedule:
    """Interpolate between values that change by a factor at each boundary.

    With boundaries ``b_0 = 0 < b_1 < … < b_n`` and values ``v_0 = init``,
    ``v_i = v_{i−1}·scale_{b_i}``: between ``b_{i−1}`` and ``b_i`` the value moves from
    ``v_{i−1}`` to ``v_i``, linearly (``"linear"``) or along half a cosine
    (``"cosine"``); from ``b_n`` on it is ``v_n``.

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"`` (``ValueError`` otherwise).
      init_value: the value at step 0.
      boundaries_and_scales: ``{step: factor}``, factors ``>= 0``.

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.piecewise_interpolate("linear", 1.0, {10: 0.5, 20: 0.0})
      >>> s(5), s(15)
      (Array(0.75, dtype=float32), Array(0.25, dtype=float32))
    """
    interpolations = {"linear": _interpolate_linear, "cosine": _interpolate_cosine}
    if interpolate_type not in interpolations:
        raise ValueError(
            f"interpolate_type must be 'linear' or 'cosine', got {interpolate_type!r}")
    interpolate = interpolations[interpolate_type]
    items = _checked_scales(boundaries_and_scales)
    bounds = [0] + [b for b, _ in items]
    values = [float(init_value)]
    for _, scale in items:
        values.append(values[-1] * scale)

    def schedule(step):
        t = _steps(step)
        value = _f32(values[-1])
        for i in reversed(range(len(items))):
            start, stop = bounds[i], bounds[i + 1]
            fraction = (t - start) / max(stop - start, 1)
            value = jnp.where(t < stop, interpolate(values[i], values[i + 1], fraction), value)
        return _f32(value)

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` restarted from step
    0, and so on: ``lr(t) = schedules[i](t − boundaries[i−1])`` for
    ``boundaries[i−1] ≤ t < boundaries[i]``.

    ``boundaries`` has one entry fewer than ``schedules`` (``ValueError`` otherwise).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.join([schedules.constant(0.1), schedules.linear(1.0, 0.0, 10)], [5])
      >>> s(4), s(7)  # the second schedule at step 7 − 5 = 2
      (Array(0.1, dtype=float32), Array(0.8, dtype=float32))
    """
    schedules, boundaries = list(schedules), list(boundaries)
    if not schedules or len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"boundaries must have one entry fewer than schedules: got {len(boundaries)} "
            f"boundaries for {len(schedules)} schedules")

    def schedule(step):
        t = jnp.asarray(step)
        value = _f32(schedules[0](t))
        for boundary, later in zip(boundaries, schedules[1:], strict=True):
            value = jnp.where(t < boundary, value, _f32(later(t - boundary)))
        return value

    return schedule
