"""Sparsemax losses, multiclass and binary (and the sparsemax projection, not a loss)."""

from tests.losses._registry import Sample, floats, int_labels, signs

SAMPLES = [
    Sample("sparsemax_loss", (floats(30, 3, 4), int_labels(31, 4, 3))),
    Sample("binary_sparsemax_loss", (floats(32, 3, 4), signs(33, 3, 4))),
]

EXEMPT = {"sparsemax": "a projection onto the simplex (no labels, no reduction), not a loss"}
