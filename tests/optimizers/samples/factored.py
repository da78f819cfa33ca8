"""Entries for ``lossjax/optimizers/_factored.py``."""

import optax

import lossjax
from tests.optimizers._registry import Entry

ENTRIES = [
    Entry("adafactor", lambda: lossjax.adafactor(1e-2, min_dim_size_to_factor=2),
          lambda: optax.adafactor(1e-2, min_dim_size_to_factor=2)),
    Entry("adafactor", lambda: lossjax.adafactor(1e-2, min_dim_size_to_factor=2, momentum=0.9,
                                                 clipping_threshold=0.5, weight_decay_rate=1e-3),
          lambda: optax.adafactor(1e-2, min_dim_size_to_factor=2, momentum=0.9,
                                  clipping_threshold=0.5, weight_decay_rate=1e-3),
          id="momentum"),
    Entry("clip_by_block_rms", lambda: lossjax.clip_by_block_rms(0.5),
          lambda: optax.clip_by_block_rms(0.5), kind="transform"),
    Entry("scale_by_factored_rms", lambda: lossjax.scale_by_factored_rms(
        min_dim_size_to_factor=2), lambda: optax.scale_by_factored_rms(
        min_dim_size_to_factor=2), kind="transform"),
    Entry("scale_by_param_block_rms", lossjax.scale_by_param_block_rms,
          optax.scale_by_param_block_rms, kind="transform"),
]
