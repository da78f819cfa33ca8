"""Entries for ``lossjax/optimizers/_orthogonal.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("muon", lambda: lossjax.muon(1e-2), lambda: optax.contrib.muon(1e-2), exempt={
        "jit": "muon crashes on an integer leaf and on a Python-number leaf (the muon issue)",
        "optax": "muon's state is one MuonState with held learning rates, not optax's "
                 "partition of a Muon and an Adam state (the muon issue recomposes it)",
        "float64": "muon holds its learning rates in float32 (LearningRateState)",
        "signature": "muon's keyword options differ from optax.contrib.muon's (the muon issue)",
        "inject": "muon's held learning rate is refreshed from the injected one, but the "
                  "state also holds a second copy (LearningRateState): the muon issue drops it",
        "sharding": "checked by the muon issue once muon is a composition",
    }),
]
