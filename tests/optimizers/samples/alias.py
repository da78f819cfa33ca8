"""Entries for ``lossjax/optimizers/_alias.py``: the required optimizers."""

import optax

import lossjax
from tests.optimizers._registry import Entry

_NU_DTYPE = ("nu_dtype= (keyword-only) is lossjax's addition beside mu_dtype "
             "(issue 27)")

ENTRIES = [
    Entry("adagrad", lambda: lossjax.adagrad(1e-2), lambda: optax.adagrad(1e-2)),
    Entry("adam", lambda: lossjax.adam(1e-2), lambda: optax.adam(1e-2),
          exempt={"signature": _NU_DTYPE}),
    Entry("adam", lambda: lossjax.adam(1e-2, nesterov=True, mu_dtype="bfloat16"),
          lambda: optax.adam(1e-2, nesterov=True, mu_dtype="bfloat16"), id="nesterov",
          exempt={"signature": _NU_DTYPE,
                  "float64": "mu_dtype=bfloat16 rounds the first moment; optax also rounds "
                             "b1·m before adding (1 − b1)·g, lossjax only the stored moment "
                             "(documented in scale_by_adam)"}),
    Entry("adamw", lambda: lossjax.adamw(1e-2, weight_decay=1e-3),
          lambda: optax.adamw(1e-2, weight_decay=1e-3),
          exempt={"signature": _NU_DTYPE}),
    Entry("rmsprop", lambda: lossjax.rmsprop(1e-2), lambda: optax.rmsprop(1e-2)),
    Entry("rmsprop", lambda: lossjax.rmsprop(1e-2, centered=True, momentum=0.9, nesterov=True),
          lambda: optax.rmsprop(1e-2, centered=True, momentum=0.9, nesterov=True),
          id="centered"),
    Entry("sgd", lambda: lossjax.sgd(1e-2), lambda: optax.sgd(1e-2)),
    Entry("sgd", lambda: lossjax.sgd(1e-2, momentum=0.9, nesterov=True),
          lambda: optax.sgd(1e-2, momentum=0.9, nesterov=True), id="momentum"),
]
