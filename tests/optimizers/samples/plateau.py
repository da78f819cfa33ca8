"""Entries for ``lossjax/optimizers/_plateau.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry, value_kwargs

ENTRIES = [
    Entry("reduce_on_plateau", lambda: lossjax.reduce_on_plateau(patience=1),
          lambda: optax.contrib.reduce_on_plateau(patience=1), kind="transform",
          update_kwargs=value_kwargs),
]
