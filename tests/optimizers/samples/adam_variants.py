"""Entries for ``lossjax/optimizers/_adam_variants.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_NU_DTYPE = ("nu_dtype= (keyword-only) is lossjax's addition beside mu_dtype "
             "(issue 27)")
_CLASS = ("the state class is ScaleByAcpropState, optax's ScaleByBeliefState "
          "(the same fields count, mu, nu)")

ENTRIES = [
    Entry("acprop", lambda: lossjax.acprop(1e-2), lambda: optax.contrib.acprop(1e-2),
          exempt={"float64": _CLASS,
                  "optax": _CLASS,
                  "signature": _NU_DTYPE}),
    Entry("scale_by_acprop", lossjax.scale_by_acprop, optax.contrib.scale_by_acprop,
          kind="transform",
          exempt={"float64": _CLASS,
                  "optax": _CLASS,
                  "signature": _NU_DTYPE}),
    Entry("scale_by_simplified_ademamix", lossjax.scale_by_simplified_ademamix,
          optax.contrib.scale_by_simplified_ademamix, kind="transform",
          exempt={"signature": _NU_DTYPE}),
    Entry("simplified_ademamix", lambda: lossjax.simplified_ademamix(1e-2),
          lambda: optax.contrib.simplified_ademamix(1e-2),
          exempt={"signature": _NU_DTYPE}),
]
