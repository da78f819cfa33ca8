"""Entries for ``lossjax/optimizers/_coin_betting.py``."""

import optax
import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_GAP = ("known gap (issue 27 follow-up): cocob's chain state differs from optax's "
        "(lossjax adds negate())")
_INT = ("known gap (issue 27 follow-up): Python-int and float0 leaves")

ENTRIES = [
    Entry("cocob", lossjax.cocob, optax.contrib.cocob,
          exempt={"float64": _GAP,
                  "optax": _GAP}),
    Entry("mechanize", lambda: lossjax.mechanize(lossjax.adam(1e-2)),
          lambda: optax.contrib.mechanize(optax.adam(1e-2)), kind="wrapper",
          exempt={"jit": _INT}),
    Entry("scale_by_cocob", lossjax.scale_by_cocob, optax.contrib.scale_by_cocob,
          kind="transform"),
]
