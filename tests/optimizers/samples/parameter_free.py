"""Entries for ``lossjax/optimizers/_parameter_free.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("dadapt_adamw", lossjax.dadapt_adamw, optax.contrib.dadapt_adamw),
    Entry("dog", lossjax.dog, optax.contrib.dog),
    Entry("dowg", lossjax.dowg, optax.contrib.dowg),
    Entry("prodigy", lossjax.prodigy, optax.contrib.prodigy),
    Entry("scale_by_dog", lambda: lossjax.scale_by_dog(("heuristic", 1e-6)), None,
          kind="transform"),
    Entry("scale_by_dowg", lossjax.scale_by_dowg, None, kind="transform"),
]
