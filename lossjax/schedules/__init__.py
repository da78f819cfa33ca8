"""Learning-rate schedules: functions ``step -> learning rate`` (jit-friendly).

Any ``learning_rate`` argument in lossjax takes a float or one of these. They carry
optax's ``*_schedule`` names without the suffix (``optax.linear_schedule`` ->
``lossjax.schedules.linear``), with the same arguments in the same order and the same
values at every step; :func:`inverse_sqrt` and :func:`warmup_stable_decay` are extra,
and :func:`cyclic`, :func:`inverse_time_decay` and :func:`swalr` come from PyTorch and Keras.
optax's own names are here too, as aliases of the same functions
(``lossjax.schedules.linear_schedule is lossjax.schedules.linear``, also
``lossjax.linear_schedule``), so a port changes only the prefix ``optax.``.
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

# optax's names for the same functions: a port from optax changes only the prefix.
constant_schedule = constant
cosine_decay_schedule = cosine_decay
cosine_onecycle_schedule = cosine_onecycle
join_schedules = join
linear_onecycle_schedule = linear_onecycle
linear_schedule = linear
piecewise_constant_schedule = piecewise_constant
piecewise_interpolate_schedule = piecewise_interpolate
polynomial_schedule = polynomial
sgdr_schedule = sgdr
warmup_constant_schedule = warmup_constant
warmup_cosine_decay_schedule = warmup_cosine_decay
warmup_exponential_decay_schedule = warmup_exponential_decay

__all__ = [
    "constant",
    "constant_schedule",
    "cosine_decay",
    "cosine_decay_schedule",
    "cosine_onecycle",
    "cosine_onecycle_schedule",
    "cyclic",
    "exponential_decay",
    "inverse_sqrt",
    "inverse_time_decay",
    "join",
    "join_schedules",
    "linear",
    "linear_onecycle",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant",
    "piecewise_constant_schedule",
    "piecewise_interpolate",
    "piecewise_interpolate_schedule",
    "plot",
    "polynomial",
    "polynomial_schedule",
    "Schedule",
    "sgdr",
    "sgdr_schedule",
    "swalr",
    "values",
    "warmup_constant",
    "warmup_constant_schedule",
    "warmup_cosine_decay",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay",
]
