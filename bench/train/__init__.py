"""Training benchmark: how lossjax's optimizers train real (small) models.

    python -m bench.train            # every workload and optimizer (about 40 min, quiet CPU)
    python -m bench.train --quick    # shorter runs, 2 seeds: checks that everything runs
    python -m bench.train --plot docs/_static/choosing_an_optimizer.png

See :mod:`bench.train.harness` for the protocol, :mod:`bench.train.workloads` for the
problems and :mod:`bench.train.report` for how the table is computed.
"""

import os

# jaxlib's CPU LAPACK kernels (the eigh and QR of SOAP, Shampoo and Kron) call OpenBLAS from
# XLA's own worker threads; with OpenBLAS's threads on top, two such calls in one step
# stalled for minutes on this 2-core machine (jax 0.10.2). Set before scipy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
