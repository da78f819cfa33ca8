"""Entries for ``lossjax/optimizers/_microbatching.py``."""

EXEMPT = {"microbatch": "wraps a gradient function, not a transformation"}

ENTRIES = []
