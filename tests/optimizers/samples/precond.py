"""Registry entries of the Kronecker-factored optimizers (SOAP, Shampoo, PSGD Kron). optax
has none of them, so there is no reference here; their float64 NumPy references live in
``tests/optimizers/_precond_reference.py``."""

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("soap", build=lambda: lossjax.soap(1e-2, precondition_frequency=2)),
    Entry("scale_by_soap", build=lambda: lossjax.scale_by_soap(precondition_frequency=2),
          kind="transform"),
]
