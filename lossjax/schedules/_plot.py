"""Draw a schedule over its steps (matplotlib, imported only when called)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lossjax.schedules._core import Schedule


def values(schedule: Schedule, steps: int) -> np.ndarray:
    """``schedule(t)`` for ``t = 0 … steps − 1``, evaluated in one jitted, vmapped call.

    Examples:
      >>> from lossjax import schedules
      >>> schedules.values(schedules.linear(1.0, 0.0, 4), 5)
      array([1.  , 0.75, 0.5 , 0.25, 0.  ], dtype=float32)
    """
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps, dtype=jnp.int32)))


def plot(schedule: Schedule, steps: int, *, ax: Any = None, label: str | None = None) -> Any:
    """Plot ``schedule`` over steps ``0 … steps − 1`` and return the matplotlib ``Axes``.

    Draws on ``ax`` (a new figure when ``None``), so several schedules can share one set of
    axes; ``label`` names the line for a legend. Needs matplotlib
    (``pip install matplotlib``); without it, ``ImportError`` says so.

    Examples:
      >>> import matplotlib
      >>> matplotlib.use("Agg")
      >>> from lossjax import schedules
      >>> ax = schedules.plot(schedules.warmup_stable_decay(1.0, 10, 80, 10), 100, label="wsd")
      >>> ax.get_lines()[0].get_ydata()[[5, 50, 95]]
      array([0.5, 1. , 0.5], dtype=float32)
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "lossjax.schedules.plot needs matplotlib: pip install matplotlib") from error
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.arange(steps), values(schedule, steps), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if label is not None:
        ax.legend()
    return ax
