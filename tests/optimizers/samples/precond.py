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
    Entry("kron", build=lambda: lossjax.kron(1e-2, preconditioner_update_probability=0.5),
          exempt={"inject_bitwise": "held, preconditioner_lr is a runtime scalar in the "
                  "factor fit (q - lr*triu(t1 - t2)/norm @ q, vmapped over a group), where "
                  "the plain optimizer has a compile-time constant, and XLA compiles the two "
                  "fits to different roundings: the trajectory agrees to 1 ulp (7e-7 after "
                  "300 steps), not bit for bit; each other held hyperparameter of kron, "
                  "held alone, is bitwise"}),
    # diagonal factors here (the cheaper program; kron's entry has triangular ones)
    Entry("scale_by_kron", build=lambda: lossjax.scale_by_kron(
        memory_save_mode="all_diag",
        preconditioner_update_probability=lossjax.kron_update_probability(flat_start=2)),
        kind="transform"),
]

EXEMPT = {
    "kron_update_probability": "a schedule of the preconditioner-update probability "
                               "(a function of the step), not a transformation",
}
