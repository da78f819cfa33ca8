"""lossjax.optimizers: GradientTransformations whose arithmetic is written in lossjax.

optax provides only the protocol (``GradientTransformation``), ``optax.chain`` and
``optax.apply_updates``; each optimizer is a short chain of the transforms below.
"""

from lossjax.optimizers._alias import adagrad, adam, adamw, rmsprop, sgd
from lossjax.optimizers._lr_find import LRFindResult, lr_find
from lossjax.optimizers._orthogonal import MuonDimensionNumbers, MuonState, muon
from lossjax.optimizers._parameter_free import (
    DAdaptAdamWState,
    DoGState,
    ProdigyState,
    dadapt_adamw,
    dog,
    prodigy,
    scale_by_dog,
)
from lossjax.optimizers._plateau import ReduceLROnPlateauState, reduce_on_plateau
from lossjax.optimizers._schedule_free import (
    ScheduleFreeAdamWState,
    ScheduleFreeState,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)
from lossjax.optimizers._transforms import (
    ClipByGlobalNormState,
    LearningRateState,
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleBySumOfSquaresState,
    TraceState,
    clip_by_global_norm,
    global_norm,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_sum_of_squares,
    set_learning_rate,
    trace,
)

__all__ = [
    "LRFindResult",
    "lr_find",
    "MuonDimensionNumbers",
    "MuonState",
    "muon",
    "DAdaptAdamWState",
    "DoGState",
    "ProdigyState",
    "dadapt_adamw",
    "dog",
    "prodigy",
    "scale_by_dog",
    "ReduceLROnPlateauState",
    "reduce_on_plateau",
    "ScheduleFreeAdamWState",
    "ScheduleFreeState",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "ClipByGlobalNormState",
    "LearningRateState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleBySumOfSquaresState",
    "TraceState",
    "adagrad",
    "adam",
    "adamw",
    "clip_by_global_norm",
    "global_norm",
    "rmsprop",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_sum_of_squares",
    "set_learning_rate",
    "sgd",
    "trace",
]
