"""Entries for ``lossjax/optimizers/_sharpness.py``."""

import optax
import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_INT = ("known gap (issue 27 follow-up): float0 leaves")
_F64 = ("known gap (issue 27 follow-up): float64/complex numbers not yet compared with optax's")

EXEMPT = {"sam_value_and_grad": "wraps a loss function, returns gradients"}


def _grad_fn(grads, params):
    del grads
    return {"grad_fn": lambda p, i: p}  # the gradient of ½‖p‖²


ENTRIES = [
    Entry("normalize", lossjax.normalize, optax.contrib.normalize, kind="transform",
          exempt={"float64": _F64,
                  "integer": _INT}),
    Entry("sam", lambda: lossjax.sam(lossjax.sgd(1e-2), optax.chain(lossjax.normalize(),
                                                                   lossjax.sgd(5e-2))),
          lambda: optax.contrib.sam(optax.sgd(1e-2), optax.chain(optax.contrib.normalize(),
                                                                 optax.sgd(5e-2))),
          kind="wrapper",
          exempt={"float64": _F64,
                  "integer": _INT}),
    Entry("sam", lambda: lossjax.sam(lossjax.adam(1e-2), optax.chain(lossjax.normalize(),
                                                                    lossjax.sgd(5e-2)),
                                     sync_period=3, opaque_mode=True),
          lambda: optax.contrib.sam(optax.adam(1e-2), optax.chain(optax.contrib.normalize(),
                                                                  optax.sgd(5e-2)),
                                    sync_period=3, opaque_mode=True),
          kind="wrapper", update_kwargs=_grad_fn, id="opaque",
          exempt={"float64": _F64,
                  "integer": _INT}),
]
