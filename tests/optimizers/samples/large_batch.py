"""Entries for ``lossjax/optimizers/_large_batch.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("lamb", lambda: lossjax.lamb(1e-2, weight_decay=1e-3),
          lambda: optax.lamb(1e-2, weight_decay=1e-3)),
    Entry("lars", lambda: lossjax.lars(1e-2, weight_decay=1e-3),
          lambda: optax.lars(1e-2, weight_decay=1e-3)),
    Entry("scale_by_trust_ratio", lossjax.scale_by_trust_ratio, optax.scale_by_trust_ratio,
          kind="transform"),
]
