"""Entries for ``lossjax/optimizers/_polyak.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry, value_kwargs

ENTRIES = [
    Entry("polyak_sgd", lambda: lossjax.polyak_sgd(1.0), lambda: optax.polyak_sgd(1.0),
          update_kwargs=value_kwargs),
    Entry("scale_by_polyak", lossjax.scale_by_polyak, optax.scale_by_polyak, kind="transform",
          update_kwargs=value_kwargs),
]
