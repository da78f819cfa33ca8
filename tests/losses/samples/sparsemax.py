"""Sparsemax loss (and the sparsemax projection, which is not a loss)."""

from tests.losses._registry import Sample, floats, int_labels

SAMPLES = [Sample("sparsemax_loss", (floats(30, 3, 4), int_labels(31, 4, 3)))]

EXEMPT = {"sparsemax": "a projection onto the simplex (no labels, no reduction), not a loss"}
