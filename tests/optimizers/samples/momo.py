"""Entries for ``lossjax/optimizers/_momo.py``: the loss is the registry's
``half_squared_norm``, passed as ``value=``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry, value_kwargs

_INT = ("known gap (issue 27 follow-up): Python-int leaves")

ENTRIES = [
    Entry("momo", lossjax.momo, optax.contrib.momo, update_kwargs=value_kwargs,
          exempt={"integer": _INT}),
    Entry("momo_adam", lossjax.momo_adam, optax.contrib.momo_adam, update_kwargs=value_kwargs,
          exempt={"integer": _INT}),
]
