"""Sample inputs of the loss registry, one module per family (see ``tests/losses/_registry.py``)."""
