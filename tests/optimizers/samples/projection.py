"""Entries for ``lossjax/optimizers/_projection.py``."""

import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

_ORBAX = ("optax's layout holds (0, 0) projectors for unprojected leaves, which "
          "orbax cannot save")

_SH = ("a projector is shaped (m, r), not like its parameter")

ENTRIES = [
    Entry("galore", lambda: lossjax.galore(1e-2, rank=1, update_proj_gap=2),
          lambda: optax.contrib.galore(1e-2, rank=1, update_proj_gap=2),
          exempt={"orbax": _ORBAX,
                  "sharding": _SH}),
    Entry("scale_by_galore", lambda: lossjax.scale_by_galore(rank=1, update_proj_gap=2),
          lambda: optax.contrib.scale_by_galore(rank=1, update_proj_gap=2), kind="transform",
          exempt={"orbax": _ORBAX,
                  "sharding": _SH}),
]
