"""One module per optimizer family, each defining ``ENTRIES`` (and optionally ``EXEMPT``);
see ``tests/optimizers/_registry.py``."""
