"""Entries for ``lossjax/optimizers/_transforms.py``: the basic transforms."""

import optax

import lossjax
from tests.optimizers._registry import Entry

EXEMPT = {
    "global_norm": "a function of a tree, not a transformation",
    "set_learning_rate": "a function of a state, checked by the contract's learning-rate test",
}

ENTRIES = [
    Entry("clip_by_global_norm", lambda: lossjax.clip_by_global_norm(1.0),
          lambda: optax.clip_by_global_norm(1.0), kind="transform"),
    Entry("scale_by_adam", lossjax.scale_by_adam, optax.scale_by_adam, kind="transform"),
    Entry("scale_by_learning_rate", lambda: lossjax.scale_by_learning_rate(1e-2),
          lambda: optax.scale_by_learning_rate(1e-2), kind="transform"),
    Entry("scale_by_learning_rate", lambda: lossjax.scale_by_learning_rate(
        lossjax.schedules.exponential_decay(1e-2, 2, 0.5)), lambda: optax.scale_by_learning_rate(
        optax.exponential_decay(1e-2, 2, 0.5)), kind="transform", id="schedule"),
    Entry("scale_by_rms", lossjax.scale_by_rms, optax.scale_by_rms, kind="transform"),
    Entry("scale_by_sum_of_squares", lossjax.scale_by_sum_of_squares, None, kind="transform"),
    Entry("trace", lambda: lossjax.trace(0.9), lambda: optax.trace(0.9), kind="transform"),
]
