"""Entries for ``lossjax/optimizers/_sign.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("lion", lambda: lossjax.lion(1e-2), lambda: optax.lion(1e-2)),
    Entry("scale_by_lion", lossjax.scale_by_lion, optax.scale_by_lion, kind="transform"),
    Entry("scale_by_sign", lossjax.scale_by_sign, optax.scale_by_sign, kind="transform"),
    Entry("sign_sgd", lambda: lossjax.sign_sgd(1e-2), lambda: optax.sign_sgd(1e-2)),
    Entry("signum", lambda: lossjax.signum(1e-2), lambda: optax.signum(1e-2)),
]
