"""Entries for ``lossjax/optimizers/_clipping.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("adaptive_grad_clip", lambda: lossjax.adaptive_grad_clip(0.1),
          lambda: optax.adaptive_grad_clip(0.1), kind="transform"),
    Entry("centralize", lossjax.centralize, optax.centralize, kind="transform"),
    Entry("clip", lambda: lossjax.clip(0.5), lambda: optax.clip(0.5), kind="transform"),
    Entry("scale", lambda: lossjax.scale(-0.5), lambda: optax.scale(-0.5), kind="transform"),
]
