"""Knowledge distillation: student and teacher logits of one shape, one loss per example."""

import numpy as np

from tests.losses._registry import Sample, floats

_ARGS = (floats(220, 3, 4), floats(221, 3, 4))

SAMPLES = [
    Sample("distillation_loss", _ARGS, hyper={"temperature": (1.0, 2.5)}),
    Sample("distillation_loss", _ARGS, kwargs={"divergence": "jsd"},
           hyper={"beta": (0.5, 0.1), "temperature": (1.0, 2.5)}, id="jsd"),
    Sample("distillation_loss", _ARGS,
           kwargs={"divergence": "reverse_kl", "labels": np.array([3, 1, -100], np.int32)},
           skip={"where_independent": "labels drop example 2",
                 "mean": "labels drop example 2 from the mean"}, id="reverse-labels"),
]
