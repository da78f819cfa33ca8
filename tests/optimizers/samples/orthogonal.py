"""Entries for ``lossjax/optimizers/_orthogonal.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("muon", lambda: lossjax.muon(1e-2), lambda: optax.contrib.muon(1e-2)),
]
