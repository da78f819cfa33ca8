"""Build- and trace-time argument checks shared by losses, optimizers and regularizers.

Every check raises ``ValueError`` naming the argument and the offending value. Values that
are JAX tracers (unknown until run time) are not checked: a check must never force a host
sync or break ``jit``.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.core
import numpy as np


def concrete_value(value: Any) -> float | None:
    """The value as a Python float when it is known now, else ``None`` (a tracer, a schedule)."""
    if isinstance(value, jax.core.Tracer) or callable(value):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)) and np.ndim(value) == 0:
        return float(value)
    return None


def check_non_negative(name: str, value: Any) -> None:
    """``value >= 0`` when known; raises ``ValueError`` otherwise."""
    v = concrete_value(value)
    if v is not None and not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_positive(name: str, value: Any) -> None:
    """``value > 0`` when known; raises ``ValueError`` otherwise."""
    v = concrete_value(value)
    if v is not None and not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def check_in_range(
    name: str, value: Any, low: float, high: float, *, high_inclusive: bool = False
) -> None:
    """``low <= value < high`` (or ``<= high``) when known; raises ``ValueError`` otherwise."""
    v = concrete_value(value)
    if v is None:
        return
    ok = low <= v <= high if high_inclusive else low <= v < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")
