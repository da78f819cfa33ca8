"""Entries for ``lossjax/optimizers/_adam_family.py``."""

import optax
import optax.contrib

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("adabelief", lambda: lossjax.adabelief(1e-2), lambda: optax.adabelief(1e-2)),
    Entry("adamax", lambda: lossjax.adamax(1e-2), lambda: optax.adamax(1e-2)),
    Entry("adamaxw", lambda: lossjax.adamaxw(1e-2), lambda: optax.adamaxw(1e-2)),
    Entry("adan", lambda: lossjax.adan(1e-2, weight_decay=1e-3),
          lambda: optax.adan(1e-2, weight_decay=1e-3)),
    Entry("ademamix", lambda: lossjax.ademamix(1e-2), lambda: optax.contrib.ademamix(1e-2)),
    Entry("adopt", lambda: lossjax.adopt(1e-2), lambda: optax.contrib.adopt(1e-2)),
    Entry("amsgrad", lambda: lossjax.amsgrad(1e-2), lambda: optax.amsgrad(1e-2)),
    Entry("nadam", lambda: lossjax.nadam(1e-2), lambda: optax.nadam(1e-2)),
    Entry("nadamw", lambda: lossjax.nadamw(1e-2), lambda: optax.nadamw(1e-2)),
    Entry("radam", lambda: lossjax.radam(1e-2), lambda: optax.radam(1e-2)),
    Entry("yogi", lambda: lossjax.yogi(1e-2), lambda: optax.yogi(1e-2)),
    Entry("scale_by_adamax", lossjax.scale_by_adamax, optax.scale_by_adamax, kind="transform"),
    Entry("scale_by_adan", lossjax.scale_by_adan, optax.scale_by_adan, kind="transform"),
    Entry("scale_by_ademamix", lossjax.scale_by_ademamix, optax.contrib.scale_by_ademamix,
          kind="transform"),
    Entry("scale_by_adopt", lossjax.scale_by_adopt, optax.contrib.scale_by_adopt,
          kind="transform"),
    Entry("scale_by_amsgrad", lossjax.scale_by_amsgrad, optax.scale_by_amsgrad, kind="transform"),
    Entry("scale_by_belief", lossjax.scale_by_belief, optax.scale_by_belief, kind="transform"),
    Entry("scale_by_radam", lossjax.scale_by_radam, optax.scale_by_radam, kind="transform"),
    Entry("scale_by_yogi", lossjax.scale_by_yogi, optax.scale_by_yogi, kind="transform"),
]
