"""Entries for ``lossjax/optimizers/_sharpness.py``."""

import jax
import optax
import optax.contrib

import lossjax
from tests.optimizers._registry import Entry, half_squared_norm

EXEMPT = {"sam_value_and_grad": "wraps a loss function, returns gradients"}


def _grad_fn(grads, params):
    del grads
    # the gradient of ½‖p‖², float0 for integer leaves (as jax.grad(allow_int=True))
    return {"grad_fn": lambda p, i: jax.grad(half_squared_norm, allow_int=True)(p)}


ENTRIES = [
    Entry("normalize", lossjax.normalize, optax.contrib.normalize, kind="transform"),
    Entry("sam", lambda: lossjax.sam(lossjax.sgd(1e-2), optax.chain(lossjax.normalize(),
                                                                   lossjax.sgd(5e-2))),
          lambda: optax.contrib.sam(optax.sgd(1e-2), optax.chain(optax.contrib.normalize(),
                                                                 optax.sgd(5e-2))),
          kind="wrapper"),
    Entry("sam", lambda: lossjax.sam(lossjax.adam(1e-2), optax.chain(lossjax.normalize(),
                                                                    lossjax.sgd(5e-2)),
                                     sync_period=3, opaque_mode=True),
          lambda: optax.contrib.sam(optax.adam(1e-2), optax.chain(optax.contrib.normalize(),
                                                                  optax.sgd(5e-2)),
                                    sync_period=3, opaque_mode=True),
          kind="wrapper", update_kwargs=_grad_fn, id="opaque"),
]
