"""Entries for ``lossjax/optimizers/_privacy.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_PER_EXAMPLE = "takes per-example gradients (a leading batch axis on every leaf), not " \
    "gradients shaped like the parameters"

ENTRIES = [
    Entry("differentially_private_aggregate",
          lambda: lossjax.differentially_private_aggregate(1.0, 0.1, 0),
          lambda: optax.contrib.differentially_private_aggregate(1.0, 0.1, 0),
          kind="transform", exempt={"jit": _PER_EXAMPLE}),
    Entry("dpsgd", lambda: lossjax.dpsgd(1e-2, 1.0, 0.1, 0), None,
          exempt={"jit": _PER_EXAMPLE}),
]
