"""Cosine similarity, distance and embedding loss: one value per example (feature axis
reduced)."""

import numpy as np

from tests.losses._registry import Sample, floats

_A, _B = floats(70, 3, 4), floats(71, 3, 4)

SAMPLES = [
    Sample("cosine_similarity", (_A, _B), hyper={"eps": (1e-8, 1e-3)}, class_where=(0, 1)),
    Sample("cosine_distance", (_A, _B), hyper={"eps": (1e-8, 1e-3)}, class_where=(0, 1)),
    Sample("cosine_embedding", (_A, _B, np.array([1, -1, 1], np.int32)),
           hyper={"margin": (0.0, 0.3), "eps": (1e-8, 1e-3)}),
]
