"""Entries for ``lossjax/optimizers/_alias.py``: the required optimizers."""

import optax

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("adagrad", lambda: lossjax.adagrad(1e-2), lambda: optax.adagrad(1e-2)),
    Entry("adam", lambda: lossjax.adam(1e-2), lambda: optax.adam(1e-2)),
    Entry("adam", lambda: lossjax.adam(1e-2, nesterov=True, mu_dtype="bfloat16"),
          lambda: optax.adam(1e-2, nesterov=True, mu_dtype="bfloat16"), id="nesterov"),
    Entry("adamw", lambda: lossjax.adamw(1e-2, weight_decay=1e-3),
          lambda: optax.adamw(1e-2, weight_decay=1e-3)),
    Entry("rmsprop", lambda: lossjax.rmsprop(1e-2), lambda: optax.rmsprop(1e-2)),
    Entry("rmsprop", lambda: lossjax.rmsprop(1e-2, centered=True, momentum=0.9, nesterov=True),
          lambda: optax.rmsprop(1e-2, centered=True, momentum=0.9, nesterov=True),
          id="centered"),
    Entry("sgd", lambda: lossjax.sgd(1e-2), lambda: optax.sgd(1e-2)),
    Entry("sgd", lambda: lossjax.sgd(1e-2, momentum=0.9, nesterov=True),
          lambda: optax.sgd(1e-2, momentum=0.9, nesterov=True), id="momentum"),
]
