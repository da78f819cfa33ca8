"""Entries for ``lossjax/optimizers/_classic.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

_RPROP_LATE = ("optax applies each Rprop step one iteration late (its first step does not "
               "move); lossjax follows the algorithm (test_optimizer_contract.py checks both)")

_ADADELTA_COMPLEX = ("optax's scale_by_adadelta accumulates the complex g² (update_moment), "
                     "not |g|²; lossjax accumulates |g|² as its other second moments")

ENTRIES = [
    Entry("adadelta", lambda: lossjax.adadelta(1.0), lambda: optax.adadelta(1.0),
          exempt={"complex": _ADADELTA_COMPLEX}),
    Entry("novograd", lambda: lossjax.novograd(1e-2), lambda: optax.novograd(1e-2)),
    Entry("rprop", lambda: lossjax.rprop(1e-2), lambda: optax.rprop(1e-2),
          exempt={"float64": _RPROP_LATE}),
    Entry("scale_by_adadelta", lossjax.scale_by_adadelta, optax.scale_by_adadelta,
          kind="transform", exempt={"complex": _ADADELTA_COMPLEX}),
    Entry("scale_by_novograd", lossjax.scale_by_novograd, optax.scale_by_novograd,
          kind="transform"),
    Entry("scale_by_rprop", lambda: lossjax.scale_by_rprop(1e-2),
          lambda: optax.scale_by_rprop(1e-2), kind="transform", exempt={"float64": _RPROP_LATE}),
]
