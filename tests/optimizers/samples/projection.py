"""Entries for ``lossjax/optimizers/_projection.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("galore", lambda: lossjax.galore(1e-2, rank=1, update_proj_gap=2),
          lambda: optax.contrib.galore(1e-2, rank=1, update_proj_gap=2)),
    Entry("scale_by_galore", lambda: lossjax.scale_by_galore(rank=1, update_proj_gap=2),
          lambda: optax.contrib.scale_by_galore(rank=1, update_proj_gap=2), kind="transform"),
]
