"""lossjax.losses: every loss, re-exported flat from its private family module.

The names are listed literally (no ``import *``) so that type checkers and IDEs see them.
Every loss keeps one contract, written in the README's "Loss contract" section.
"""

from lossjax.losses._cross_entropy import (
    binary_cross_entropy,
    generalized_cross_entropy,
    poly1_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
    softmax_focal_loss,
)
from lossjax.losses._divergence import (
    generalized_kl_divergence,
    jensen_shannon_divergence,
    kl_divergence,
)
from lossjax.losses._large_vocab import (
    linear_cross_entropy,
)
from lossjax.losses._likelihood import (
    gaussian_nll,
    poisson_nll,
)
from lossjax.losses._margin import (
    categorical_hinge,
    hinge,
    multi_margin,
    multiclass_hinge,
    multiclass_perceptron,
    multilabel_margin,
    multilabel_soft_margin,
    perceptron,
    soft_margin,
    squared_hinge,
)
from lossjax.losses._metric_learning import (
    circle,
    contrastive,
    hinge_embedding,
    ntxent,
    triplet_margin,
)
from lossjax.losses._ranking import (
    margin_ranking,
    ranking_softmax,
)
from lossjax.losses._reduce import (
    elementwise_loss,
    reduce_loss,
)
from lossjax.losses._regression import (
    huber,
    log_cosh,
    mae,
    mape,
    mse,
    msle,
    smooth_l1,
)
from lossjax.losses._segmentation import (
    dice,
    generalized_dice,
    tversky,
)
from lossjax.losses._sequence import (
    ctc_greedy_decode,
    ctc_loss,
    perplexity,
)
from lossjax.losses._similarity import (
    cosine_distance,
    cosine_embedding,
    cosine_similarity,
)
from lossjax.losses._sparsemax import (
    sparsemax,
    sparsemax_loss,
)

__all__ = [
    "binary_cross_entropy",
    "categorical_hinge",
    "circle",
    "contrastive",
    "cosine_distance",
    "cosine_embedding",
    "cosine_similarity",
    "ctc_greedy_decode",
    "ctc_loss",
    "dice",
    "elementwise_loss",
    "gaussian_nll",
    "generalized_cross_entropy",
    "generalized_dice",
    "generalized_kl_divergence",
    "hinge",
    "hinge_embedding",
    "huber",
    "jensen_shannon_divergence",
    "kl_divergence",
    "linear_cross_entropy",
    "log_cosh",
    "mae",
    "mape",
    "margin_ranking",
    "mse",
    "msle",
    "multi_margin",
    "multiclass_hinge",
    "multiclass_perceptron",
    "multilabel_margin",
    "multilabel_soft_margin",
    "ntxent",
    "perceptron",
    "perplexity",
    "poisson_nll",
    "poly1_cross_entropy",
    "ranking_softmax",
    "reduce_loss",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_l1",
    "soft_margin",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_focal_loss",
    "sparsemax",
    "sparsemax_loss",
    "squared_hinge",
    "triplet_margin",
    "tversky",
]
