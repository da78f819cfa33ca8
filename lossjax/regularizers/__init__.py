"""lossjax.regularizers: penalties, regularizing transforms and dropout."""

from lossjax.regularizers._dropout import dropout
from lossjax.regularizers._penalties import l1_penalty, l2_penalty
from lossjax.regularizers._transforms import (
    add_cautious_decayed_weights,
    add_decayed_weights,
    add_l1,
    proximal_l1,
    soft_threshold,
)

__all__ = [
    "add_cautious_decayed_weights",
    "add_decayed_weights",
    "add_l1",
    "dropout",
    "l1_penalty",
    "l2_penalty",
    "proximal_l1",
    "soft_threshold",
]
