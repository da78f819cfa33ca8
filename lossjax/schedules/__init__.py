"""Learning-rate schedules: functions ``step -> learning rate`` (jit-friendly).

Any ``learning_rate`` argument in lossjax takes a float or one of these. They carry
optax's ``*_schedule`` names without the suffix (``optax.linear_schedule`` ->
``lossjax.schedules.linear``), with the same arguments in the same order and the same
values at every step; :func:`inverse_sqrt` and :func:`warmup_stable_decay` are extra,
and :func:`cyclic`, :func:`inverse_time_decay` and :func:`swalr` come from PyTorch and Keras.
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
from lossjax.schedules._cyclic import cyclic, inverse_time_decay, swalr
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
    "cyclic",
    "exponential_decay",
    "inverse_sqrt",
    "inverse_time_decay",
    "join",
    "linear",
    "linear_onecycle",
    "piecewise_constant",
    "piecewise_interpolate",
    "plot",
    "polynomial",
    "sgdr",
    "swalr",
    "values",
    "warmup_constant",
    "warmup_cosine_decay",
    "warmup_exponential_decay",
    "warmup_stable_decay",
]
