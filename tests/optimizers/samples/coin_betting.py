"""Entries for ``lossjax/optimizers/_coin_betting.py``."""

import optax
import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("cocob", lossjax.cocob, optax.contrib.cocob),
    Entry("mechanize", lambda: lossjax.mechanize(lossjax.adam(1e-2)),
          lambda: optax.contrib.mechanize(optax.adam(1e-2)), kind="wrapper"),
    Entry("scale_by_cocob", lossjax.scale_by_cocob, optax.contrib.scale_by_cocob,
          kind="transform"),
]
