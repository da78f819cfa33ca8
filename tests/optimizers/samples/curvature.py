"""Entries for ``lossjax/optimizers/_curvature.py``: the objective is the registry's
``half_squared_norm``, passed as ``obj_fn=``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry, half_squared_norm

_SIG = ("hessian_diagonal_fn defaults to None (a fresh estimator), optax's to an "
        "instance built at import")


def _objective(grads, params):
    del grads
    return {"obj_fn": half_squared_norm}


ENTRIES = [
    Entry("hutchinson_estimator_diag_hessian", lossjax.hutchinson_estimator_diag_hessian,
          optax.contrib.hutchinson_estimator_diag_hessian, kind="transform",
          update_kwargs=_objective),
    Entry("scale_by_sophia", lambda: lossjax.scale_by_sophia(update_interval=2), None,
          kind="transform", update_kwargs=_objective),
    Entry("sophia", lambda: lossjax.sophia(1e-2, update_interval=2),
          lambda: optax.contrib.sophia(1e-2, update_interval=2), update_kwargs=_objective,
          exempt={"signature": _SIG}),
]
