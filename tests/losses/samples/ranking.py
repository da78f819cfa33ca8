"""Ranking losses: listwise softmax over [lists, items] and pairwise margin ranking."""

import numpy as np

from tests.losses._registry import Sample, floats, signs

SAMPLES = [
    Sample("ranking_softmax", (floats(110, 3, 4),
                               np.array([[1, 0, 2, 0], [0, 0, 1, 0], [1, 1, 0, 3]], np.float32)),
           class_where=(0, 1)),
    Sample("margin_ranking", (floats(111, 3, 2), floats(112, 3, 2), signs(113, 3, 2)),
           hyper={"margin": (0.0, 0.5)}),
]
