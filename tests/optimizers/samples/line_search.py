"""Entries for ``lossjax/optimizers/_line_search.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry, line_search_kwargs

EXEMPT = {"value_and_grad_from_state": "a helper that reads value and gradient from a state"}

ENTRIES = [
    Entry("lbfgs", lossjax.lbfgs, optax.lbfgs, update_kwargs=line_search_kwargs),
    Entry("scale_by_lbfgs", lossjax.scale_by_lbfgs, optax.scale_by_lbfgs, kind="transform"),
    Entry("scale_by_zoom_linesearch", lambda: lossjax.scale_by_zoom_linesearch(8),
          lambda: optax.scale_by_zoom_linesearch(8), kind="transform",
          update_kwargs=line_search_kwargs),
]
