"""Entries for ``lossjax/optimizers/_mars.py``."""

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("mars", lambda: lossjax.mars(1e-2, weight_decay=1e-3)),
    Entry("mars", lambda: lossjax.mars(1e-2, optimizer="lion", cautious_weight_decay=True,
                                       weight_decay=1e-2), id="lion-cautious"),
    Entry("scale_by_mars", lossjax.scale_by_mars, kind="transform"),
]
