"""``lossjax/optimizers/_lr_find.py`` holds no transformation."""

EXEMPT = {"lr_find": "a learning-rate range test that runs a training loop, not a transformation"}

ENTRIES = []
