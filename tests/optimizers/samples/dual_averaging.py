"""Entries for ``lossjax/optimizers/_dual_averaging.py`` (asgd: PyTorch, ftrl: Keras; optax
has neither)."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_SQRT = ("optax takes sqrt(k + 1) of the int32 count in float32 (test_contrib.py "
         "compares at 1e-8 with a schedule, 1e-10 without)")

_CPLX = ("the cube root of a complex second moment is undefined (optax's fails too)")

ENTRIES = [
    Entry("asgd", lambda: lossjax.asgd(1e-2), None),
    Entry("ftrl", lambda: lossjax.ftrl(1e-1), None),
    Entry("madgrad", lambda: lossjax.madgrad(1e-2), lambda: optax.contrib.madgrad(1e-2),
          exempt={"float64": _SQRT,
                  "complex": _CPLX}),
    Entry("scale_by_madgrad", lambda: lossjax.scale_by_madgrad(1e-2),
          lambda: optax.contrib.scale_by_madgrad(1e-2),
          exempt={"float64": _SQRT,
                  "complex": _CPLX}),
]
