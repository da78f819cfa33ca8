"""Margin losses: binary and multiclass hinge, perceptron, soft margin, multi-label."""

import numpy as np

from tests.losses._registry import Sample, floats, int_labels, one_hot, signs

_S, _SIGNS = floats(20, 3, 2), signs(21, 3, 2)
_X, _Y = floats(22, 3, 4), int_labels(23, 4, 3)
_MULTI_HOT = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 1]], np.float32)

SAMPLES = [
    Sample("hinge", (_S, _SIGNS)),
    Sample("squared_hinge", (_S, _SIGNS)),
    Sample("soft_margin", (_S, _SIGNS)),
    Sample("perceptron", (_S, _SIGNS)),
    Sample("multiclass_hinge", (_X, _Y)),
    Sample("multiclass_perceptron", (_X, _Y)),
    Sample("multi_margin", (_X, _Y), hyper={"margin": (1.0, 0.5)}),
    Sample("categorical_hinge", (_X, one_hot(_Y, 4))),
    Sample("multilabel_margin", (_X, _MULTI_HOT)),
    Sample("multilabel_soft_margin", (_X, _MULTI_HOT)),
]
