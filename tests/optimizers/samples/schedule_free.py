"""Entries for ``lossjax/optimizers/_schedule_free.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

EXEMPT = {"schedule_free_eval_params": "reads evaluation parameters out of a state"}

ENTRIES = [
    Entry("schedule_free", lambda: lossjax.schedule_free(lossjax.adam(1e-2, b1=0.0), 1e-2),
          lambda: optax.contrib.schedule_free(optax.adam(1e-2, b1=0.0), 1e-2),
          kind="wrapper"),
    Entry("schedule_free_adamw", lambda: lossjax.schedule_free_adamw(1e-2, warmup_steps=2),
          lambda: optax.contrib.schedule_free_adamw(1e-2, warmup_steps=2)),
    Entry("schedule_free_sgd", lambda: lossjax.schedule_free_sgd(1e-2),
          lambda: optax.contrib.schedule_free_sgd(1e-2)),
]
