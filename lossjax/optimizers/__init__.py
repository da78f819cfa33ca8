"""lossjax.optimizers: GradientTransformations whose arithmetic is written in lossjax.

optax provides only the protocol (``GradientTransformation``), ``optax.chain`` and
``optax.apply_updates``; each optimizer is a short chain of the transforms below.
"""

from lossjax.optimizers._alias import adagrad, adam, adamw, rmsprop, sgd
from lossjax.optimizers._line_search import (
    ScaleByLBFGSState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    lbfgs,
    scale_by_lbfgs,
    scale_by_zoom_linesearch,
    value_and_grad_from_state,
)
from lossjax.optimizers._polyak import polyak_sgd, scale_by_polyak
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
    "ScaleByLBFGSState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "lbfgs",
    "scale_by_lbfgs",
    "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
    "polyak_sgd",
    "scale_by_polyak",
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
