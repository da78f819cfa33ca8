"""Entries for ``lossjax/optimizers/_schedule_free.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_INT = ("known gap (issue 27 follow-up): Python-int leaves")
_F64 = ("known gap (issue 27 follow-up): float64/complex numbers not yet compared with optax's")

EXEMPT = {"schedule_free_eval_params": "reads evaluation parameters out of a state"}

ENTRIES = [
    Entry("schedule_free", lambda: lossjax.schedule_free(lossjax.adam(1e-2, b1=0.0), 1e-2),
          lambda: optax.contrib.schedule_free(optax.adam(1e-2, b1=0.0), 1e-2),
          kind="wrapper",
          exempt={"float64": _F64,
                  "jit": _INT}),
    Entry("schedule_free_adamw", lambda: lossjax.schedule_free_adamw(1e-2, warmup_steps=2),
          lambda: optax.contrib.schedule_free_adamw(1e-2, warmup_steps=2)),
    Entry("schedule_free_sgd", lambda: lossjax.schedule_free_sgd(1e-2),
          lambda: optax.contrib.schedule_free_sgd(1e-2)),
]
