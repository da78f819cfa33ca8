"""Overlap losses: [B, *spatial, C] probabilities, one loss per example."""

from tests.losses._registry import Sample, distribution, int_labels, one_hot

_P = distribution(90, 2, 3, 2)
_T = one_hot(int_labels(91, 2, 2, 3), 2)

SAMPLES = [
    Sample("tversky", (_P, _T),
           hyper={"alpha": (0.5, 0.3), "beta": (0.5, 0.7), "smooth": (1.0, 0.0)}),
    Sample("dice", (_P, _T), hyper={"smooth": (1.0, 0.0)}),
    Sample("generalized_dice", (_P, _T), hyper={"smooth": (1e-5, 1.0)}),
]
