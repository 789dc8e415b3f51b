"""fnn.detection: single-shot object detection on a grid (docs/detection.md).

    x, boxes, classes = canvases(key, images, labels, 1000)     # items pasted on 64x64 canvases
    target = encode(boxes, classes)                             # (B, 8, 8, 6) for the head
    loss = detection_loss(model_output, target)                 # a Loss record: .grad is the hand gradient
    detections = detect(model_output)                           # decode, score threshold, per-class NMS
    value, per_class = mean_average_precision(detections, truths(boxes, classes))

The box losses themselves are `fnn.losses.iou` and `fnn.losses.giou`; the detector, `fnn.models.detector`.
"""
from __future__ import annotations

import numpy as np

from .canvas import canvases as canvases
from .canvas import tight_boxes as tight_boxes
from .evaluate import average_precision as average_precision
from .evaluate import batched_nms as batched_nms
from .evaluate import box_iou as box_iou
from .evaluate import detect as detect
from .evaluate import mean_average_precision as mean_average_precision
from .evaluate import nms as nms
from .grid import PRIOR as PRIOR
from .grid import decode as decode
from .grid import decode_boxes as decode_boxes
from .grid import detection_loss as detection_loss
from .grid import encode as encode


def truths(boxes, classes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image (boxes (m, 4), classes (m,)) without the empty slots (class -1), as
    `mean_average_precision` takes them, from `canvases`' boxes (B, N, 4) and classes (B, N)."""
    boxes, classes = np.asarray(boxes), np.asarray(classes)
    return [(b[k >= 0], k[k >= 0]) for b, k in zip(boxes, classes, strict=True)]


__all__ = ["PRIOR", "average_precision", "batched_nms", "box_iou", "canvases", "decode", "decode_boxes", "detect",
           "detection_loss", "encode", "mean_average_precision", "nms", "tight_boxes", "truths"]
