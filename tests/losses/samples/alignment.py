"""Preference-alignment losses: one summed log-probability per completion, one loss per
pair; the pairs here are a [3, 2] batch (the contract poisons a whole row of it)."""

from tests.losses._registry import Sample, floats

_LOGPS = tuple(floats(210 + i, 3, 2, low=-8.0, high=-0.5) for i in range(4))

SAMPLES = [
    Sample("dpo_loss", _LOGPS, hyper={"beta": (0.1, 0.5), "label_smoothing": (0.1, 0.0)}),
    Sample("ipo_loss", _LOGPS, hyper={"beta": (0.1, 0.5)}),
    Sample("simpo_loss", _LOGPS[:2], hyper={"beta": (2.0, 0.5), "gamma": (0.5, 0.0)}),
    Sample("orpo_loss", _LOGPS[:2], hyper={"beta": (0.1, 1.0)}),
]
