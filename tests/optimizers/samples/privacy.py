"""Entries for ``lossjax/optimizers/_privacy.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_SIG = ("key defaults to 0 (optax: None with a warning); no deprecated seed=")

_PER_EXAMPLE = ("takes per-example gradients (a leading batch axis on every leaf), not "
                "gradients shaped like the parameters (it raises ValueError on them, as "
                "optax's); test_contrib.py compares float64 and complex128 with optax's")

ENTRIES = [
    Entry("differentially_private_aggregate",
          lambda: lossjax.differentially_private_aggregate(1.0, 0.1, 0),
          lambda: optax.contrib.differentially_private_aggregate(1.0, 0.1, 0),
          kind="transform", exempt={"float64": _PER_EXAMPLE,
                  "sharding": _PER_EXAMPLE,
                  "signature": _SIG,
                  "jit": _PER_EXAMPLE}),
    Entry("dpsgd", lambda: lossjax.dpsgd(1e-2, 1.0, 0.1, 0), None,
          exempt={"sharding": _PER_EXAMPLE,
                  "inject": _PER_EXAMPLE,
                  "jit": _PER_EXAMPLE}),
]
