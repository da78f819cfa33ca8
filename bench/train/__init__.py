"""Training benchmark: how lossjax's optimizers train real (small) models.

    python -m bench.train            # every workload and optimizer (about 40 min, quiet CPU)
    python -m bench.train --quick    # shorter runs, 2 seeds: checks that everything runs
    python -m bench.train --plot docs/_static/choosing_an_optimizer.png

See :mod:`bench.train.harness` for the protocol, :mod:`bench.train.workloads` for the
problems and :mod:`bench.train.report` for how the table is computed.
"""
