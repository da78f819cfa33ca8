"""Metric-learning losses: triplets, pairs, and batch losses over [B, D] embeddings."""

import numpy as np

from tests.losses._registry import Sample, floats, signs

_A, _P, _N = floats(80, 3, 4), floats(81, 3, 4), floats(82, 3, 4)
_GROUPS = np.array([0, 0, 0, 1, 1, 1], np.int32)
_BATCH = ("a dropped row leaves the whole batch: the other anchors' losses change (their "
          "positives and negatives), so masked 'none' values differ from unmasked ones")

SAMPLES = [
    Sample("triplet_margin", (_A, _P, _N),
           hyper={"margin": (1.0, 0.5), "p": (2.0, 1.5), "eps": (1e-6, 1e-3)}),
    Sample("contrastive", (_A, _P, np.array([1, 0, 1], np.int32)),
           hyper={"margin": (1.0, 2.0)}),
    Sample("hinge_embedding", (floats(83, 3, 2, low=0.0, high=2.0), signs(84, 3, 2)),
           hyper={"margin": (1.0, 0.5)}),
    Sample("ntxent", (floats(85, 6, 3), _GROUPS), hyper={"temperature": (0.07, 0.5)},
           skip={"where_independent": _BATCH}),
    Sample("circle", (floats(86, 6, 3), _GROUPS),
           hyper={"gamma": (80.0, 10.0), "margin": (0.4, 0.25)},
           skip={"where_independent": _BATCH}),
]
