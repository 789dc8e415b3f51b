"""From scored boxes to detections and a score, in NumPy: pairwise IoU, non-max suppression
(greedy, per class), and mean average precision (VOC-style all-point interpolation).

    kept = nms(boxes, scores, 0.5)                       # indices, by decreasing score
    detections = detect(pred)                            # per image: (boxes, scores, classes)
    value, per_class = mean_average_precision(detections, truths, iou_threshold=0.5)
"""
from __future__ import annotations

import numpy as np

from .grid import PRIOR, decode


def box_iou(first, second) -> np.ndarray:
    """(N, M) IoU of every pair of (N, 4) and (M, 4) corner boxes (x1, y1, x2, y2); 0 where a union is 0."""
    first, second = np.asarray(first, np.float64).reshape(-1, 4), np.asarray(second, np.float64).reshape(-1, 4)
    low = np.maximum(first[:, None, :2], second[None, :, :2])
    high = np.minimum(first[:, None, 2:], second[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    area = lambda b: np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)   # noqa: E731
    union = area(first)[:, None] + area(second)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes, scores, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy non-max suppression, as torchvision.ops.nms: visit boxes by decreasing score (ties
    in input order), keep one unless a kept box overlaps it with IoU > iou_threshold. Returns the
    kept indices (int64) by decreasing score. boxes (N, 4), scores (N,)."""
    boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms: expected boxes (N, 4) and scores (N,), got {len(boxes)} boxes and {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    overlaps = box_iou(boxes[order], boxes[order])
    alive = np.ones(len(order), bool)
    for i in range(len(order)):
        if alive[i]:
            alive[i + 1:] &= overlaps[i, i + 1:] <= iou_threshold
    return order[alive].astype(np.int64)


def batched_nms(boxes, scores, classes, iou_threshold: float = 0.5) -> np.ndarray:
    """`nms` within each class (boxes of different classes never suppress each other), as
    torchvision.ops.batched_nms: kept indices by decreasing score."""
    scores, classes = np.asarray(scores).reshape(-1), np.asarray(classes).reshape(-1)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    kept = [np.flatnonzero(classes == k)[nms(boxes[classes == k], scores[classes == k], iou_threshold)]
            for k in np.unique(classes)]
    kept = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    return kept[np.argsort(-scores[kept], kind="stable")].astype(np.int64)


def detect(pred, *, score_threshold: float = 0.05, iou_threshold: float = 0.5, size: int = 64,
           prior: float = PRIOR) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image of head outputs (B, S, S, 5 + K): (boxes (n, 4), scores (n,), classes (n,)) of the
    cells scoring above `score_threshold`, after per-class `batched_nms`, by decreasing score."""
    boxes, scores, classes = (np.asarray(a) for a in decode(pred, size=size, prior=prior))
    out = []
    for b, s, k in zip(boxes, scores, classes, strict=True):
        keep = np.flatnonzero(s > score_threshold)
        keep = keep[batched_nms(b[keep], s[keep], k[keep], iou_threshold)]
        out.append((b[keep], s[keep], k[keep]))
    return out


def average_precision(scores, hits, num_truths: int) -> float:
    """All-point interpolated AP (VOC 2010+): the area under the precision envelope
    p(r) = max_{r' >= r} precision(r') of the ranked detections. scores (N,), hits (N,) bool
    (a true positive), num_truths > 0 the ground-truth boxes of the class."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(hits, bool)[order]
    true_positives = np.cumsum(hits)
    recall = np.concatenate([[0.0], true_positives / num_truths, [1.0]])
    precision = np.concatenate([[0.0], true_positives / np.arange(1, len(hits) + 1), [0.0]])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def _match_class(detections, truths, k: int, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores, hits and the number of truths of class k over all images, matched as the VOC devkit
    does: by decreasing score, a detection takes its highest-IoU truth of the image if that IoU >=
    iou_threshold and the truth is not taken yet; otherwise (a duplicate too) it is a false positive."""
    scores, hits, total = [], [], 0
    for (boxes, score, classes), (truth_boxes, truth_classes) in zip(detections, truths, strict=True):
        mine, theirs = np.asarray(classes) == k, np.asarray(truth_boxes)[np.asarray(truth_classes) == k]
        total += len(theirs)
        score = np.asarray(score)[mine]
        order = np.argsort(-score, kind="stable")
        overlaps = box_iou(np.asarray(boxes)[mine][order], theirs)
        taken = np.zeros(len(theirs), bool)
        for row in overlaps:
            best = int(np.argmax(row)) if len(theirs) else -1
            hit = best >= 0 and row[best] >= iou_threshold and not taken[best]
            if hit:
                taken[best] = True
            hits.append(hit)
        scores.extend(score[order])
    return np.asarray(scores, np.float64), np.asarray(hits, bool), total


def mean_average_precision(detections, truths, *, iou_threshold: float = 0.5) -> tuple[float, dict[int, float]]:
    """mAP@iou_threshold: the mean, over the classes that have ground truth, of each class's
    `average_precision` (detections of a class with no ground truth are not scored).

    detections: per image (boxes (n, 4), scores (n,), classes (n,)), as `detect` returns;
    truths: per image (boxes (m, 4), classes (m,)), entries of class -1 ignored (empty slots).
    Returns (mAP, {class: AP}); mAP is nan when there is no ground truth at all.
    """
    if len(detections) != len(truths):
        raise ValueError(f"mean_average_precision: expected one entry per image in both, got "
                         f"{len(detections)} detections and {len(truths)} truths")
    present = np.unique(np.concatenate([np.asarray(c).reshape(-1) for _, c in truths] or [np.zeros(0, int)]))
    per_class = {}
    for k in present[present >= 0]:
        scores, hits, total = _match_class(detections, truths, int(k), iou_threshold)
        per_class[int(k)] = average_precision(scores, hits, total)
    return (float(np.mean(list(per_class.values()))) if per_class else float("nan")), per_class
