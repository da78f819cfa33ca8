"""Registry entries of the Kronecker-factored optimizers (SOAP, Shampoo, PSGD Kron). optax
has none of them, so there is no reference here; their float64 NumPy references live in
``tests/optimizers/_precond_reference.py``."""

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("soap", build=lambda: lossjax.soap(1e-2, precondition_frequency=2)),
    Entry("scale_by_soap", build=lambda: lossjax.scale_by_soap(precondition_frequency=2),
          kind="transform"),
    Entry("shampoo", build=lambda: lossjax.shampoo(1e-2, block_size=4, graft_type="adam",
                                                   start_preconditioning_step=1)),
    Entry("scale_by_shampoo", build=lambda: lossjax.scale_by_shampoo(
        block_size=4, graft_type="adagrad", start_preconditioning_step=1,
        preconditioning_compute_steps=2), kind="transform"),
]
