"""Learning-rate schedules: functions ``step -> learning rate`` (jit-friendly).

Any ``learning_rate`` argument in lossjax takes a float or one of these. They carry
optax's ``*_schedule`` names without the suffix (``optax.linear_schedule`` ->
``lossjax.schedules.linear``), with the same arguments in the same order and the same
values at every step; :func:`inverse_sqrt` and :func:`warmup_stable_decay` are extra.
Each returns a float32 scalar and runs under ``jit`` and ``vmap``. :func:`plot` draws one.
"""

from lossjax.schedules._core import (
    Schedule,
    constant,
    cosine_decay,
    exponential_decay,
    join,
    linear,
    piecewise_constant,
    piecewise_interpolate,
    polynomial,
)
from lossjax.schedules._plot import plot, values
from lossjax.schedules._warmup import (
    cosine_onecycle,
    inverse_sqrt,
    linear_onecycle,
    sgdr,
    warmup_constant,
    warmup_cosine_decay,
    warmup_exponential_decay,
    warmup_stable_decay,
)

__all__ = [
    "Schedule",
    "constant",
    "cosine_decay",
    "cosine_onecycle",
    "exponential_decay",
    "inverse_sqrt",
    "join",
    "linear",
    "linear_onecycle",
    "piecewise_constant",
    "piecewise_interpolate",
    "plot",
    "polynomial",
    "sgdr",
    "values",
    "warmup_constant",
    "warmup_cosine_decay",
    "warmup_exponential_decay",
    "warmup_stable_decay",
]
