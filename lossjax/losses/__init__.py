"""lossjax.losses: every loss, re-exported flat from its private family module."""

from lossjax.losses import (
    _alignment,
    _classification,
    _contrastive,
    _detection,
    _distillation,
    _divergence,
    _large_vocab,
    _likelihood,
    _metric_learning,
    _moe,
    _ranking,
    _reduce,
    _regression,
    _reinforcement,
    _segmentation,
    _sequence,
    _similarity,
)
from lossjax.losses._alignment import *  # noqa: F403
from lossjax.losses._classification import *  # noqa: F403
from lossjax.losses._contrastive import *  # noqa: F403
from lossjax.losses._detection import *  # noqa: F403
from lossjax.losses._distillation import *  # noqa: F403
from lossjax.losses._divergence import *  # noqa: F403
from lossjax.losses._large_vocab import *  # noqa: F403
from lossjax.losses._likelihood import *  # noqa: F403
from lossjax.losses._metric_learning import *  # noqa: F403
from lossjax.losses._moe import *  # noqa: F403
from lossjax.losses._ranking import *  # noqa: F403
from lossjax.losses._reduce import *  # noqa: F403
from lossjax.losses._regression import *  # noqa: F403
from lossjax.losses._reinforcement import *  # noqa: F403
from lossjax.losses._segmentation import *  # noqa: F403
from lossjax.losses._sequence import *  # noqa: F403
from lossjax.losses._similarity import *  # noqa: F403

_FAMILIES = (
    _reduce,
    _regression,
    _classification,
    _divergence,
    _sequence,
    _large_vocab,
    _similarity,
    _metric_learning,
    _segmentation,
    _likelihood,
    _ranking,
    _reinforcement,
    _detection,
    _alignment,
    _distillation,
    _contrastive,
    _moe,
)
__all__ = sorted(name for module in _FAMILIES for name in module.__all__)
