"""lossjax.losses: every loss, re-exported flat from its private family module.

The names are listed literally (no ``import *``) so that type checkers and IDEs see them.
Every loss keeps one contract, written in the README's "Loss contract" section.
"""

from lossjax.losses._alignment import (
    dpo_loss,
    ipo_loss,
    orpo_loss,
    simpo_loss,
)
from lossjax.losses._contrastive import (
    clip_loss,
    siglip_loss,
)
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
from lossjax.losses._detection import (
    ciou_loss,
    diou_loss,
    giou_loss,
    iou_loss,
)
from lossjax.losses._distillation import (
    distillation_loss,
)
from lossjax.losses._divergence import (
    generalized_kl_divergence,
    jensen_shannon_divergence,
    kl_divergence,
)
from lossjax.losses._large_vocab import (
    linear_cross_entropy,
    linear_distillation_loss,
    per_token_logprobs,
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
from lossjax.losses._moe import (
    load_balancing_loss,
    router_z_loss,
)
from lossjax.losses._post_training import (
    GRPOMetrics,
    cpo_loss,
    group_relative_advantages,
    grpo_loss,
    kto_loss,
    reward_model_loss,
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
from lossjax.losses._reinforcement import (
    clipped_surrogate_loss,
    clipped_value_loss,
    discounted_returns,
    double_q_learning_loss,
    entropy_loss,
    generalized_advantage_estimation,
    lambda_returns,
    n_step_returns,
    policy_gradient_loss,
    q_learning_loss,
    td_loss,
    vtrace,
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
    binary_sparsemax_loss,
    sparsemax,
    sparsemax_loss,
)

__all__ = [
    "binary_cross_entropy",
    "binary_sparsemax_loss",
    "categorical_hinge",
    "ciou_loss",
    "circle",
    "clip_loss",
    "clipped_surrogate_loss",
    "clipped_value_loss",
    "contrastive",
    "cosine_distance",
    "cosine_embedding",
    "cosine_similarity",
    "cpo_loss",
    "ctc_greedy_decode",
    "ctc_loss",
    "dice",
    "diou_loss",
    "discounted_returns",
    "distillation_loss",
    "double_q_learning_loss",
    "dpo_loss",
    "elementwise_loss",
    "entropy_loss",
    "gaussian_nll",
    "generalized_advantage_estimation",
    "generalized_cross_entropy",
    "generalized_dice",
    "generalized_kl_divergence",
    "giou_loss",
    "group_relative_advantages",
    "grpo_loss",
    "GRPOMetrics",
    "hinge",
    "hinge_embedding",
    "huber",
    "iou_loss",
    "ipo_loss",
    "jensen_shannon_divergence",
    "kl_divergence",
    "kto_loss",
    "lambda_returns",
    "linear_cross_entropy",
    "linear_distillation_loss",
    "load_balancing_loss",
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
    "n_step_returns",
    "ntxent",
    "orpo_loss",
    "per_token_logprobs",
    "perceptron",
    "perplexity",
    "poisson_nll",
    "policy_gradient_loss",
    "poly1_cross_entropy",
    "q_learning_loss",
    "ranking_softmax",
    "reduce_loss",
    "reward_model_loss",
    "router_z_loss",
    "siglip_loss",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "simpo_loss",
    "smooth_l1",
    "soft_margin",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "softmax_focal_loss",
    "sparsemax",
    "sparsemax_loss",
    "squared_hinge",
    "td_loss",
    "triplet_margin",
    "tversky",
    "vtrace",
]
