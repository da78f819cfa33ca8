"""Bounding-box losses: ``[..., 4]`` boxes, one loss per box pair."""

import numpy as np

from tests.losses._registry import Sample, floats

_XY = floats(200, 3, 2, low=0.0, high=2.0)
_WH = floats(201, 3, 2, low=0.5, high=2.0)
_XY_T = floats(202, 3, 2, low=0.0, high=2.0)
_WH_T = floats(203, 3, 2, low=0.5, high=2.0)
_XYXY = (np.concatenate([_XY, _XY + _WH], -1), np.concatenate([_XY_T, _XY_T + _WH_T], -1))
_CXCYWH = (np.concatenate([_XY, _WH], -1), np.concatenate([_XY_T, _WH_T], -1))

SAMPLES = [
    entry
    for name in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss")
    for entry in (
        Sample(name, _XYXY, hyper={"eps": (1e-7, 1e-3)}),
        Sample(name, _CXCYWH, kwargs={"box_format": "cxcywh"}, hyper={"eps": (1e-7, 1e-3)},
               id="cxcywh"),
    )
]
