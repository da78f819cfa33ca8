"""linear_cross_entropy: hidden [N, D], weight [D, V] shared by every token, labels [N]."""

from tests.losses._registry import Sample, floats, int_labels

_STATIC = ("a static option of the custom VJP (its backward rule is specialised on it); "
           "a traced value raises ValueError")

SAMPLES = [
    Sample("linear_cross_entropy", (floats(60, 4, 3), floats(61, 3, 5), int_labels(62, 5, 4)),
           kwargs={"chunk_size": 3},
           static={"z_loss": _STATIC, "label_smoothing": _STATIC, "logit_softcap": _STATIC},
           example_axes=(0, None, 0), mismatch=(0, 2)),
]
