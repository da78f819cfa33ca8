"""Entries for ``lossjax/optimizers/_momo.py``: the loss is the registry's
``half_squared_norm``, passed as ``value=``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry, value_kwargs

ENTRIES = [
    Entry("momo", lossjax.momo, optax.contrib.momo, update_kwargs=value_kwargs),
    Entry("momo_adam", lossjax.momo_adam, optax.contrib.momo_adam, update_kwargs=value_kwargs),
]
