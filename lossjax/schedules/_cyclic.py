"""Schedules from PyTorch and Keras that optax lacks: cyclical rates (PyTorch's
``CyclicLR``), inverse-time decay (Keras' ``InverseTimeDecay``) and the SWA annealing
schedule (PyTorch's ``SWALR``). Each returns a float32 scalar of the step ``t = 0, 1, ...``
(the number of optimizer steps taken, PyTorch's ``last_epoch`` after each
``scheduler.step()``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from lossjax._validation import check_non_negative, check_positive
from lossjax.schedules._core import Schedule

_MODES = ("triangular", "triangular2", "exp_range")


def cyclic(
    base_value: float,
    max_value: float,
    step_size_up: int = 2000,
    step_size_down: int | None = None,
    mode: str = "triangular",
    gamma: float = 1.0,
    scale_fn: Callable[[jax.Array], jax.Array] | None = None,
    scale_mode: str = "cycle",
) -> Schedule:
    """Cyclical learning rate (PyTorch's ``CyclicLR``, same arguments and defaults).

    With ``T = up + down`` (``down = up`` by default), cycle ``c = ⌊1 + t/T⌋`` and position
    ``x = 1 + t/T − c``: the rate rises linearly from ``base`` to ``max`` over ``up`` steps,
    then falls back over ``down``, its amplitude scaled by ::

        triangular:   1
        triangular2:  1/2^(c − 1)          (halved every cycle)
        exp_range:    gammaᵗ                (of the step)

    or by ``scale_fn`` of ``c`` (``scale_mode="cycle"``) or ``t`` (``"iterations"``).

    References: Smith, "Cyclical Learning Rates for Training Neural Networks" (2017).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.cyclic(0.1, 1.0, step_size_up=4, mode="triangular2")
      >>> [round(float(s(t)), 3) for t in (0, 2, 4, 8, 10, 12)]
      [0.1, 0.55, 1.0, 0.1, 0.325, 0.55]
    """
    check_non_negative("base_value", base_value)
    check_non_negative("max_value", max_value)
    check_positive("step_size_up", step_size_up)
    down = step_size_up if step_size_down is None else step_size_down
    check_positive("step_size_down", down)
    if scale_fn is None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        check_positive("gamma", gamma)
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
        scale_fns: dict[str, Callable[[jax.Array], jax.Array]] = {
            "triangular": lambda x: jnp.ones_like(x),
            "triangular2": lambda x: 1.0 / 2.0 ** (x - 1.0),
            # log γ from the float64 host value: γ rounded to float32 and raised to t
            # would lose ~t ulps.
            "exp_range": lambda x: jnp.exp(x * math.log(gamma)),
        }
        scale_fn = scale_fns[mode]
    elif scale_mode not in ("cycle", "iterations"):
        raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
    total = float(step_size_up + down)
    scale_by: Callable[[jax.Array], jax.Array] = scale_fn

    def schedule(step):
        t = jnp.asarray(step, jnp.float32)
        # The position in the cycle exactly (t − k·T is exact for whole steps below 2²⁴);
        # PyTorch's ``1 + t/T − c`` would cancel digits in float32.
        completed = jnp.floor(t / total)
        position = t - completed * total
        cycle = completed + 1.0
        factor = jnp.where(position <= step_size_up, position / step_size_up,
                           (total - position) / down)
        amplitude = (max_value - base_value) * factor
        scale = scale_by(cycle if scale_mode == "cycle" else t)
        return jnp.asarray(base_value + amplitude * scale, jnp.float32)

    return schedule


def inverse_time_decay(
    init_value: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> Schedule:
    """``lr(t) = init/(1 + rate·t/decay_steps)`` (Keras' ``InverseTimeDecay``, same
    arguments); ``staircase`` uses ``⌊t/decay_steps⌋``.

    Examples:
      >>> from lossjax import schedules
      >>> schedules.inverse_time_decay(1.0, decay_steps=10, decay_rate=0.5)(20)
      Array(0.5, dtype=float32)
    """
    check_non_negative("init_value", init_value)
    check_positive("decay_steps", decay_steps)
    check_non_negative("decay_rate", decay_rate)

    def schedule(step):
        p = jnp.asarray(step, jnp.float32) / decay_steps
        if staircase:
            p = jnp.floor(p)
        return jnp.asarray(init_value / (1.0 + decay_rate * p), jnp.float32)

    return schedule


def swalr(
    init_value: float,
    swa_value: float,
    swa_start: int,
    anneal_steps: int = 10,
    anneal_strategy: str = "cos",
) -> Schedule:
    """The SWA schedule: ``init_value`` until ``swa_start``, then annealed to ``swa_value``
    over ``anneal_steps`` and kept there (PyTorch's ``SWALR`` from a constant rate)::

        s = clip((t − swa_start)/anneal_steps, 0, 1),  α = (1 − cos πs)/2  (or s: "linear")
        lr(t) = swa_value·α + init_value·(1 − α)

    ``anneal_steps = 0`` switches at once. Use it with :func:`lossjax.swa_params`.

    References: Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
    Generalization" (2018).

    Examples:
      >>> from lossjax import schedules
      >>> s = schedules.swalr(1.0, 0.1, swa_start=10, anneal_steps=4, anneal_strategy="linear")
      >>> [round(float(s(t)), 3) for t in (5, 10, 12, 14, 100)]
      [1.0, 1.0, 0.55, 0.1, 0.1]
    """
    check_non_negative("init_value", init_value)
    check_non_negative("swa_value", swa_value)
    check_non_negative("swa_start", swa_start)
    check_non_negative("anneal_steps", anneal_steps)
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")

    def schedule(step):
        since = jnp.asarray(step, jnp.float32) - swa_start
        if anneal_steps == 0:
            s = jnp.where(since >= 0, 1.0, 0.0)
        else:
            s = jnp.clip(since / anneal_steps, 0.0, 1.0)
        alpha = (1.0 - jnp.cos(math.pi * s)) / 2.0 if anneal_strategy == "cos" else s
        return jnp.asarray(swa_value * alpha + init_value * (1.0 - alpha), jnp.float32)

    return schedule
