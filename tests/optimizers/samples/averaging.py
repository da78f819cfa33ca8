"""Entries for ``lossjax/optimizers/_averaging.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

EXEMPT = {"averaged_params": "reads the average out of an ema_params or swa_params state"}

ENTRIES = [
    Entry("ema", lambda: lossjax.ema(0.9), lambda: optax.ema(0.9), kind="transform"),
    Entry("ema_params", lambda: lossjax.ema_params(0.9), None, kind="transform"),
    Entry("swa_params", lambda: lossjax.swa_params(swa_start=1), None, kind="transform"),
]
