"""Entries for ``lossjax/optimizers/_cautious.py``."""

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("cautious", lambda: lossjax.cautious(lossjax.adamw(1e-2)), kind="wrapper"),
]
