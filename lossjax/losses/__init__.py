"""lossjax.losses: every loss, re-exported flat from its private family module."""

from lossjax.losses import (
    _classification,
    _divergence,
    _large_vocab,
    _reduce,
    _regression,
    _sequence,
)
from lossjax.losses._classification import *  # noqa: F403
from lossjax.losses._divergence import *  # noqa: F403
from lossjax.losses._large_vocab import *  # noqa: F403
from lossjax.losses._reduce import *  # noqa: F403
from lossjax.losses._regression import *  # noqa: F403
from lossjax.losses._sequence import *  # noqa: F403

__all__ = sorted(
    name
    for module in (_reduce, _regression, _classification, _divergence, _sequence, _large_vocab)
    for name in module.__all__
)
