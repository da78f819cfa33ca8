"""Sequence losses: CTC and perplexity."""

import numpy as np

from tests.losses._registry import Sample, floats, int_labels

SAMPLES = [
    Sample("ctc_loss", (floats(50, 2, 5, 4), np.array([[1, 2, 0], [1, 3, 2]], np.int32)),
           kwargs={"logit_lengths": np.array([5, 4], np.int32),
                   "label_lengths": np.array([2, 3], np.int32)},
           skip={"weights": "ctc_loss takes no weights (PyTorch's and optax's signature)",
                 "where": "ctc_loss takes no where; logit_lengths/label_lengths pad",
                 "mean": "'mean' divides each sequence by its label length (PyTorch's)"}),
    Sample("perplexity", (floats(51, 3, 4), int_labels(52, 4, 3)),
           skip={"weights": "perplexity is a metric: exp(mean cross-entropy), no weights",
                 "reductions": "perplexity always pools the kept tokens (no reduction)",
                 "mean": "no reduction argument"}),
]

EXEMPT = {"ctc_greedy_decode": "a decoder (argmax, merge, drop blanks), not a loss"}
