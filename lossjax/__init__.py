"""lossjax: pure, jit-compiled losses, hand-written optax-compatible optimizers and
regularization for JAX.

Every public name is available flat (``lossjax.mse``, ``lossjax.adam``) and in its namespace
(``lossjax.losses``, ``lossjax.optimizers``, ``lossjax.regularizers``, ``lossjax.schedules``).
"""

from lossjax import losses, optimizers, regularizers, schedules
from lossjax.losses import *  # noqa: F403
from lossjax.optimizers import *  # noqa: F403
from lossjax.regularizers import *  # noqa: F403

__version__ = "0.1.0"

__all__ = sorted(
    [*losses.__all__, *optimizers.__all__, *regularizers.__all__]
) + ["losses", "optimizers", "regularizers", "schedules"]
