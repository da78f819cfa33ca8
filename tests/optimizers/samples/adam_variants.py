"""Entries for ``lossjax/optimizers/_adam_variants.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("acprop", lambda: lossjax.acprop(1e-2), lambda: optax.contrib.acprop(1e-2)),
    Entry("scale_by_acprop", lossjax.scale_by_acprop, optax.contrib.scale_by_acprop,
          kind="transform"),
    Entry("scale_by_simplified_ademamix", lossjax.scale_by_simplified_ademamix,
          optax.contrib.scale_by_simplified_ademamix, kind="transform"),
    Entry("simplified_ademamix", lambda: lossjax.simplified_ademamix(1e-2),
          lambda: optax.contrib.simplified_ademamix(1e-2)),
]
