"""Divergences: log-predictions against target distributions, the class axis summed."""

import numpy as np

from tests.losses._registry import Sample, distribution

_LOG_P = np.log(distribution(40, 3, 4))
_T = distribution(41, 3, 4)

SAMPLES = [
    Sample("kl_divergence", (_LOG_P, _T), class_where=(0, 1)),
    Sample("generalized_kl_divergence", (_LOG_P, 2.0 * _T), class_where=(0, 1)),
    Sample("jensen_shannon_divergence", (_LOG_P, _T), class_where=(0, 1)),
]
