"""Entries for ``lossjax/optimizers/_wrappers.py``: each wraps a small Adam or SGD."""

import jax
import jax.numpy as jnp
import optax

import lossjax
from tests.optimizers._registry import Entry

_SIG = ("optax's is the class MultiSteps; lossjax.multi_steps is a function")
_F64 = ("optax accumulates in accumulator_dtype=bfloat16 after rounding differently")

EXEMPT = {"multi_steps_has_updated": "reads a flag out of a multi_steps state",
          "skip_large_updates": "a should_skip_update_fn for multi_steps",
          "skip_not_finite": "a should_skip_update_fn for multi_steps"}


def _is_matrix(params):
    return jax.tree.map(lambda p: jnp.ndim(p) == 2, params)


def _labels(params):
    return jax.tree.map(lambda p: "matrix" if jnp.ndim(p) == 2 else "other", params)


def _optax_multi_steps():
    return optax.MultiSteps(optax.adam(1e-2), 2).gradient_transformation()


ENTRIES = [
    Entry("apply_if_finite", lambda: lossjax.apply_if_finite(lossjax.adam(1e-2), 2),
          lambda: optax.apply_if_finite(optax.adam(1e-2), 2), kind="wrapper"),
    Entry("freeze", lambda: lossjax.freeze(_is_matrix), lambda: optax.freeze(_is_matrix),
          kind="wrapper"),
    Entry("inject_hyperparams", lambda: lossjax.inject_hyperparams(lossjax.adam)(
        learning_rate=1e-2, b1=0.8), lambda: optax.inject_hyperparams(optax.adam)(
        learning_rate=1e-2, b1=0.8), kind="wrapper"),
    Entry("inject_hyperparams", lambda: lossjax.inject_hyperparams(lossjax.sgd)(
        learning_rate=1e-2), lambda: optax.inject_hyperparams(optax.sgd)(learning_rate=1e-2),
          kind="wrapper", id="sgd"),
    Entry("lookahead", lambda: lossjax.lookahead(lossjax.adam(1e-2), 2, 0.5),
          lambda: optax.lookahead(optax.adam(1e-2), 2, 0.5), kind="wrapper",
          params=optax.LookaheadParams.init_synced),
    Entry("masked", lambda: lossjax.masked(lossjax.adam(1e-2), _is_matrix),
          lambda: optax.masked(optax.adam(1e-2), _is_matrix), kind="wrapper"),
    Entry("multi_steps", lambda: lossjax.multi_steps(lossjax.adam(1e-2), 2),
          _optax_multi_steps, kind="wrapper",
          exempt={"float64": "optax accumulates the gradients in float32 even for float64 "
                             "parameters; lossjax in the parameters' dtype (float32 at least)",
                  "signature": "optax's is the class MultiSteps(opt, every_k_schedule, ...); "
                               "lossjax.multi_steps is a function returning the transform"}),
    Entry("multi_steps", lambda: lossjax.multi_steps(
        lossjax.adam(1e-2), 2, should_skip_update_fn=lossjax.skip_not_finite,
        accumulator_dtype=jnp.bfloat16), lambda: optax.MultiSteps(
        optax.adam(1e-2), 2, should_skip_update_fn=optax.skip_not_finite,
        accumulator_dtype=jnp.bfloat16).gradient_transformation(), kind="wrapper",
          id="skip",
          exempt={"float64": _F64,
                  "signature": _SIG}),
    Entry("partition", lambda: lossjax.partition(
        {"matrix": lossjax.adam(1e-2), "other": lossjax.sgd(1e-2)}, _labels),
          lambda: optax.partition({"matrix": optax.adam(1e-2), "other": optax.sgd(1e-2)},
                                  _labels), kind="wrapper"),
    Entry("zero_nans", lossjax.zero_nans, optax.zero_nans, kind="transform"),
]
