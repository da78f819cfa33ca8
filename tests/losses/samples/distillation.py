"""Knowledge distillation: student and teacher logits of one shape, one loss per example."""

from tests.losses._registry import Sample, floats

SAMPLES = [
    Sample("distillation_loss", (floats(220, 3, 4), floats(221, 3, 4)),
           hyper={"temperature": (1.0, 2.5)}),
]
