"""Cross-entropy losses: softmax (integer or distribution labels), sigmoid, focal, poly-1."""

import numpy as np

from tests.losses._registry import Sample, distribution, floats, int_labels, one_hot

_X = floats(10, 3, 4)
_Y = int_labels(11, 4, 3)
_BIN_X, _BIN_Y = floats(12, 3, 2), (floats(13, 3, 2) > 0).astype(np.float32)

SAMPLES = [
    Sample("softmax_cross_entropy_with_integer_labels", (_X, _Y),
           hyper={"label_smoothing": (0.1, 0.0), "z_loss": (1e-2, 0.0)}, class_where=(0,)),
    Sample("softmax_cross_entropy_with_integer_labels", (_X, _Y), id="class_weights",
           kwargs={"class_weights": np.array([1.0, 2.0, 0.5, 1.5], np.float32),
                   "ignore_index": 3},
           skip={"mean": "with class_weights the mean divides by Σ w_y (PyTorch's rule)"}),
    Sample("softmax_cross_entropy", (_X, distribution(14, 3, 4)),
           hyper={"label_smoothing": (0.1, 0.0)}, class_where=(0, 1)),
    Sample("sigmoid_binary_cross_entropy", (_BIN_X, _BIN_Y)),
    Sample("binary_cross_entropy", (floats(15, 3, 2, low=0.05, high=0.95), _BIN_Y),
           hyper={"eps": (1e-7, 1e-2)}),
    Sample("sigmoid_focal_loss", (_BIN_X, _BIN_Y),
           hyper={"gamma": (2.0, 0.0), "alpha": (0.25, 0.75)}),
    Sample("softmax_focal_loss", (_X, one_hot(_Y, 4)),
           hyper={"gamma": (2.0, 0.0), "alpha": (0.25, 1.0)}),
    Sample("poly1_cross_entropy", (_X, distribution(16, 3, 4)),
           hyper={"epsilon": (2.0, -0.5)}, class_where=(0, 1)),
    Sample("generalized_cross_entropy", (_X, _Y), hyper={"q": (0.5, 1.0)}),
]
