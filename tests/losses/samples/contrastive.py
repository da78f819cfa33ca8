"""Image–text contrastive losses over a batch of ``[B, D]`` paired embeddings, dense and in
blocks (a block size that does not divide the batch)."""

from tests.losses._registry import Sample, floats

_A, _B = floats(230, 5, 3, low=-1.0, high=1.0), floats(231, 5, 3, low=-1.0, high=1.0)
_BATCH = ("a dropped pair leaves the batch: it is no longer a negative of the others, so "
          "the kept pairs' values change")

SAMPLES = [
    Sample("clip_loss", (_A, _B), kwargs={"logit_scale": 2.0},
           hyper={"logit_scale": (2.0, 5.0)}, skip={"where_independent": _BATCH}),
    Sample("clip_loss", (_A, _B), kwargs={"logit_scale": 2.0, "block_size": 2},
           hyper={"logit_scale": (2.0, 5.0)}, skip={"where_independent": _BATCH},
           id="blocked"),
    Sample("siglip_loss", (_A, _B), kwargs={"logit_scale": 2.0, "logit_bias": -1.0},
           hyper={"logit_scale": (2.0, 5.0), "logit_bias": (-1.0, 0.0)},
           skip={"where_independent": _BATCH}),
    Sample("siglip_loss", (_A, _B),
           kwargs={"logit_scale": 2.0, "logit_bias": -1.0, "block_size": 2},
           hyper={"logit_scale": (2.0, 5.0), "logit_bias": (-1.0, 0.0)},
           skip={"where_independent": _BATCH}, id="blocked"),
]
