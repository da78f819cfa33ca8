"""Entries for ``lossjax/optimizers/_classic.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("adadelta", lambda: lossjax.adadelta(1.0), lambda: optax.adadelta(1.0)),
    Entry("novograd", lambda: lossjax.novograd(1e-2), lambda: optax.novograd(1e-2)),
    Entry("rprop", lambda: lossjax.rprop(1e-2), lambda: optax.rprop(1e-2)),
    Entry("scale_by_adadelta", lossjax.scale_by_adadelta, optax.scale_by_adadelta,
          kind="transform"),
    Entry("scale_by_novograd", lossjax.scale_by_novograd, optax.scale_by_novograd,
          kind="transform"),
    Entry("scale_by_rprop", lambda: lossjax.scale_by_rprop(1e-2),
          lambda: optax.scale_by_rprop(1e-2), kind="transform"),
]
