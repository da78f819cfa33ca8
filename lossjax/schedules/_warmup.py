"""Schedules with a warm-up, restarts or a one-cycle shape, and the two language-model
schedules optax lacks: :func:`inverse_sqrt` and :func:`warmup_stable_decay` (WSD)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from lossjax._validation import check_non_negative, check_positive
from lossjax.schedules._core import (
    Schedule,
    _f32,
    _steps,
    cosine_decay,
    exponential_decay,
    join,
    linear,
    piecewise_interpolate,
)


def _with_warmup(init_value: float, peak_value: float, warmup_steps: int,
                 after: Schedule) -> Schedule:
    """Linear ``init → peak`` over ``warmup_steps``, then ``after`` (restarted at step 0)."""
    check_non_negative("warmup_steps", warmup_steps)
    if warmup_steps == 0:
        return after
    return join([linear(init_value, peak_value, warmup_steps), after], [warmup_steps])


def warmup_constant(init_value: float, peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warm-up from ``init`` to ``peak`` over ``warmup_steps``, then ``peak``.

    ``lr(t) = init + (peak − init)·min(t, W)/W``. With ``warmup_steps = 0`` it is ``peak``
    from the start (optax's gives ``init_value`` forever there).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.warmup_constant(0.0, 1.0, 10)
      >>> s(5), s(100)
      (Array(0.5, dtype=float32), Array(1., dtype=float32))
    """
    check_non_negative("warmup_steps", warmup_steps)
    if warmup_steps == 0:
        return lambda step: jnp.full([], peak_value, jnp.float32)
    return linear(init_value, peak_value, warmup_steps)


def warmup_cosine_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    """Linear warm-up from ``init`` to ``peak`` over ``W = warmup_steps``, then cosine decay
    to ``end`` at step ``decay_steps`` (counted from 0, warm-up included)::

        lr(t) = end + (peak − end)·c^p,  c = ½(1 + cos(π·min(t − W, D)/D)),  D = decay − W

    ``p = exponent``. ``decay_steps`` must exceed ``warmup_steps`` (``ValueError``).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.warmup_cosine_decay(0.0, 1.0, 10, 110)
      >>> s(5), s(60)  # half the warm-up; half the cosine
      (Array(0.5, dtype=float32), Array(0.5, dtype=float32))
    """
    check_non_negative("init_value", init_value)
    check_non_negative("peak_value", peak_value)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps ({decay_steps}) must be larger than warmup_steps ({warmup_steps})")
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    decay = cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return _with_warmup(init_value, peak_value, warmup_steps, decay)


def warmup_exponential_decay(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """Linear warm-up from ``init`` to ``peak`` over ``W = warmup_steps``, then
    :func:`exponential_decay` from ``peak`` counted from step ``W``:
    ``lr(t) = peak · rate^((t − W − begin)/transition_steps)``.

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.warmup_exponential_decay(0.0, 1.0, 10, 10, 0.5)
      >>> s(5), s(30)
      (Array(0.5, dtype=float32), Array(0.25, dtype=float32))
    """
    decay = exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
                              staircase, end_value)
    return _with_warmup(init_value, peak_value, warmup_steps, decay)


def sgdr(cosine_kwargs: Iterable[Mapping[str, float]]) -> Schedule:
    """Warm restarts: :func:`warmup_cosine_decay` cycles one after another.

    Each dict of ``cosine_kwargs`` holds the arguments of one cycle (``init_value``,
    ``peak_value``, ``warmup_steps``, ``decay_steps``, optionally ``end_value`` and
    ``exponent``); a cycle lasts its ``decay_steps``.

    References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
    Restarts" (2017).

    Examples:
      >>> from lossjax import schedules
      >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=20)
      >>> s = schedules.sgdr([cycle, cycle])
      >>> s(5), s(20), s(25)  # peak, restart, peak again
      (Array(1., dtype=float32), Array(0., dtype=float32), Array(1., dtype=float32))
    """
    cycles: list[dict[str, Any]] = [dict(kwargs) for kwargs in cosine_kwargs]
    if not cycles:
        raise ValueError("cosine_kwargs must hold at least one cycle")
    boundaries = np.cumsum([kwargs["decay_steps"] for kwargs in cycles])[:-1]
    return join([warmup_cosine_decay(**kwargs) for kwargs in cycles],
                [int(b) for b in boundaries])


def _check_onecycle(transition_steps: int, peak_value: float, pct_start: float) -> None:
    check_positive("transition_steps", transition_steps)
    check_non_negative("peak_value", peak_value)
    if not 0.0 <= pct_start <= 1.0:
        raise ValueError(f"pct_start must be in [0, 1], got {pct_start!r}")


def linear_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """One cycle with linear pieces: ``peak/div → peak`` until ``pct_start·T``, back to
    ``peak/div`` at ``pct_final·T``, then to ``peak/(div·final_div)`` at ``T``; constant
    after.

    References: Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks
    Using Large Learning Rates" (2017).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.linear_onecycle(100, 1.0)
      >>> s(0), s(30), s(85)
      (Array(0.04, dtype=float32), Array(1., dtype=float32), Array(0.04, dtype=float32))
    """
    _check_onecycle(transition_steps, peak_value, pct_start)
    check_positive("div_factor", div_factor)
    check_positive("final_div_factor", final_div_factor)
    return piecewise_interpolate("linear", peak_value / div_factor, {
        int(pct_start * transition_steps): div_factor,
        int(pct_final * transition_steps): 1.0 / div_factor,
        transition_steps: 1.0 / final_div_factor,
    })


def cosine_onecycle(
    transition_steps: int,
    peak_value: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    """One cycle with cosine pieces: ``peak/div → peak`` until ``pct_start·T``, then down to
    ``peak/(div·final_div)`` at ``T``; constant after (PyTorch's ``OneCycleLR`` with
    ``anneal_strategy="cos"`` and ``three_phase=False``).

    References: Smith & Topin, "Super-Convergence" (2017).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.cosine_onecycle(100, 1.0)
      >>> s(0), s(30)
      (Array(0.04, dtype=float32), Array(1., dtype=float32))
    """
    _check_onecycle(transition_steps, peak_value, pct_start)
    check_positive("div_factor", div_factor)
    check_positive("final_div_factor", final_div_factor)
    return piecewise_interpolate("cosine", peak_value / div_factor, {
        int(pct_start * transition_steps): div_factor,
        int(transition_steps): 1.0 / (div_factor * final_div_factor),
    })


def inverse_sqrt(peak_value: float, warmup_steps: int) -> Schedule:
    """Linear warm-up to ``peak``, then decay as the inverse square root of the step::

        lr(t) = peak · min(t/W, √(W/t))     (W = warmup_steps >= 1)

    i.e. ``peak·t/W`` for ``t < W`` and ``peak·√(W/t)`` after, continuous at ``t = W``.
    This is the Transformer schedule ``d^−½·min(t^−½, t·W^−1.5)`` rescaled to peak at
    ``peak`` (fairseq's ``inverse_sqrt`` with ``warmup_init_lr=0``).

    References: Vaswani et al., "Attention Is All You Need" (2017).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.inverse_sqrt(1.0, 100)
      >>> s(50), s(100), s(400)
      (Array(0.5, dtype=float32), Array(1., dtype=float32), Array(0.5, dtype=float32))
    """
    check_non_negative("peak_value", peak_value)
    _check_steps("warmup_steps", warmup_steps, minimum=1)

    def schedule(step):
        t = _steps(step)
        decay = jnp.sqrt(warmup_steps / jnp.maximum(t, warmup_steps))
        return _f32(peak_value * jnp.where(t < warmup_steps, t / warmup_steps, decay))

    return schedule


def _check_steps(name: str, value: int, minimum: int = 0) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        hint = (" (a fraction? multiply it by the total number of steps)"
                if isinstance(value, float) and 0 < value < 1 else "")
        raise ValueError(f"{name} must be an integer number of steps, got {value!r}{hint}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


_DECAY_SHAPES = {
    "linear": lambda f: 1.0 - f,
    "cosine": lambda f: 0.5 * (1.0 + jnp.cos(jnp.pi * f)),
    "sqrt": lambda f: 1.0 - jnp.sqrt(f),
}


def warmup_stable_decay(
    peak_value: float,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    *,
    init_value: float = 0.0,
    end_value: float = 0.0,
    decay_shape: str = "linear",
) -> Schedule:
    """Warmup-stable-decay (WSD, "trapezoidal"): warm up, hold the peak, then decay.

    With ``W, S, D`` the three phases' steps and ``f = min((t − W − S)/D, 1)``::

        lr(t) = init + (peak − init)·t/W        t < W
              = peak                            W ≤ t < W + S
              = end + (peak − end)·shape(f)     W + S ≤ t   (end from W + S + D on)

    ``shape`` is ``"linear"`` ``1 − f``, ``"cosine"`` ``½(1 + cos πf)`` or ``"sqrt"``
    ``1 − √f`` (the "1 − sqrt" cooldown, which keeps the rate higher for longer).
    The plateau can be extended or branched from for a new decay, which is why the
    schedule is used for language-model pre-training.

    Args:
      peak_value: the plateau's value.
      warmup_steps, stable_steps: integers ``>= 0``.
      decay_steps: integer ``>= 1``. A step count that is not a whole number (e.g. a
        fraction of the run) or is negative raises ``ValueError`` naming it.
      init_value, end_value: the values at step 0 and at the end of the decay.
      decay_shape: ``"linear"``, ``"cosine"`` or ``"sqrt"``.

    References: Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with
    Scalable Training Strategies" (2024); Hägele et al., "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations" (2024) for ``"sqrt"``.

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.warmup_stable_decay(1.0, 10, 80, 10)
      >>> [float(s(t)) for t in (5, 50, 95, 100)]
      [0.5, 1.0, 0.5, 0.0]
    """
    check_non_negative("peak_value", peak_value)
    check_non_negative("init_value", init_value)
    check_non_negative("end_value", end_value)
    _check_steps("warmup_steps", warmup_steps)
    _check_steps("stable_steps", stable_steps)
    _check_steps("decay_steps", decay_steps, minimum=1)
    if decay_shape not in _DECAY_SHAPES:
        raise ValueError(
            f"decay_shape must be one of {sorted(_DECAY_SHAPES)}, got {decay_shape!r}")
    shape = _DECAY_SHAPES[decay_shape]
    decay_start = warmup_steps + stable_steps

    def schedule(step):
        t = _steps(step)
        warm = init_value + (peak_value - init_value) * t / max(warmup_steps, 1)
        fraction = jnp.clip((t - decay_start) / decay_steps, 0.0, 1.0)
        decayed = end_value + (peak_value - end_value) * shape(fraction)
        return _f32(jnp.where(t < warmup_steps, warm, decayed))

    return schedule
