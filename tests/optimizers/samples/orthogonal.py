"""Entries for ``lossjax/optimizers/_orthogonal.py``."""

import jax.numpy as jnp
import optax.contrib

import lossjax
from tests.optimizers._registry import Entry


def _logit_max(grads, params):
    """qk_clip's update input: a per-leaf maximum logit for the matrix, ``None`` for every
    other leaf (the tree has the parameters' structure)."""
    del grads
    return {"attention_logit_max": {name: jnp.full((1, 1), 150.0) if name == "w" else None
                                    for name in params}}


def _matrices(params):
    """scale_by_muon orthogonalises the matrices and passes the vectors through."""
    return {name: lossjax.MuonDimensionNumbers() if jnp.ndim(p) == 2 else None
            for name, p in params.items()}


EXEMPT = {
    "muon_labels": "builds labels from a parameter tree, not a transformation",
    "newton_schulz": "a function of a batch of matrices, not a transformation",
    "NS_COEFFS_PRESETS": "a table of Newton-Schulz coefficients",
}

ENTRIES = [
    Entry("muon", lambda: lossjax.muon(1e-2), lambda: optax.contrib.muon(1e-2),
          exempt={"signature": "optax.contrib.muon's parameters come first, in its order "
                               "with its kinds and defaults; lossjax adds keyword-only options "
                               "after them (newton_schulz_method, second_moment, b2, "
                               "cautious_weight_decay, batch_newton_schulz) that optax lacks: "
                               "test_muon.py checks that prefix"}),
    Entry("muon", lambda: lossjax.muon(1e-2, "polar_express", newton_schulz_method="gram",
                                       weight_decay=0.1, cautious_weight_decay=True),
          None, id="polar-express-gram-cautious"),
    Entry("scale_by_muon", lambda: lossjax.scale_by_muon(weight_dimension_numbers=_matrices),
          None, kind="transform"),
    Entry("normuon", lambda: lossjax.normuon(1e-2)),
    Entry("adamuon", lambda: lossjax.adamuon(1e-2)),
    Entry("scion", lambda: lossjax.scion(1e-2)),
    Entry("qk_clip", lambda: lossjax.qk_clip(100.0), None, kind="transform",
          update_kwargs=_logit_max),
]
