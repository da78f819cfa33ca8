"""Negative log-likelihoods: Poisson and Gaussian, elementwise."""

import numpy as np

from tests.losses._registry import Sample, floats

SAMPLES = [
    Sample("poisson_nll", (floats(100, 3, 2), np.array([[0, 1], [3, 2], [5, 0]], np.float32)),
           hyper={"eps": (1e-8, 1e-2)}),
    Sample("gaussian_nll", (floats(101, 3, 2), floats(102, 3, 2),
                            floats(103, 3, 2, low=0.1, high=2.0)),
           hyper={"eps": (1e-6, 1e-2)}),
]
