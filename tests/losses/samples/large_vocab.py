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

_DISTILL_STATIC = "a static option of the custom VJP: a traced value raises ValueError"

SAMPLES += [
    Sample("linear_distillation_loss",
           (floats(63, 4, 3), floats(64, 3, 5), floats(65, 4, 2), floats(66, 2, 5)),
           kwargs={"chunk_size": 3, "divergence": "jsd"},
           static={"temperature": _DISTILL_STATIC, "beta": _DISTILL_STATIC},
           example_axes=(0, None, 0, None), mismatch=(3, 2)),
]

EXEMPT = {
    "per_token_logprobs": "per-token log-probabilities (minus linear_cross_entropy with "
                          "reduction='none'), not a reduced loss",
}
