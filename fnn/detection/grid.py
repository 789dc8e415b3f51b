"""A single-shot head on an S x S grid, one anchor per cell: target encoding, decoding, and
the detection loss as a `Loss` record with its hand-derived gradient.

The head gives, per cell (i, j) (row, column) of side c = size / S, 5 + K numbers:
    [o, tx, ty, tw, th, k_0 ... k_{K-1}]   objectness logit, box offsets, class logits
    box center = ((j + sigmoid(tx)) c, (i + sigmoid(ty)) c),  width = prior exp(tw),  height = prior exp(th)
The cell that holds a box's center is responsible for it (of two boxes centered in one cell,
one is kept: rare on `canvases`, whose items keep their centers in their own quadrants).
A target is (B, S, S, 6): [present, class, x1, y1, x2, y2].
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .. import activations
from ..losses import giou, sigmoid_binary_cross_entropy, softmax_cross_entropy
from ..losses.base import Array, Loss, check_float, check_reduction, reduce, scale

PRIOR = 24.0        # the anchor's side in pixels: Fashion-MNIST items drawn at 21-32 pixels


def encode(boxes, classes, *, grid: int = 8, size: int = 64) -> Array:
    """Targets (B, grid, grid, 6) [present, class, x1, y1, x2, y2] from boxes (B, N, 4) (x1, y1, x2, y2)
    in pixels and classes (B, N) int (-1: no object). Jitted."""
    boxes, classes = jnp.asarray(boxes, jnp.float32), jnp.asarray(classes)
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or classes.shape != boxes.shape[:2]:
        raise ValueError(f"encode: expected boxes (B, N, 4) and classes (B, N), got boxes {boxes.shape} "
                         f"and classes {classes.shape}")
    return _encode(boxes, classes, grid, size)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _encode(boxes: Array, classes: Array, grid: int, size: int) -> Array:
    cell = size / grid
    center = (boxes[..., :2] + boxes[..., 2:]) / 2
    col, row = (jnp.clip(center // cell, 0, grid - 1).astype(jnp.int32)[..., i] for i in range(2))
    row = jnp.where(classes >= 0, row, grid)                   # empty slots land outside and are dropped
    rows = jnp.concatenate([jnp.ones_like(boxes[..., :1]), classes[..., None].astype(jnp.float32), boxes], -1)
    batch = jnp.broadcast_to(jnp.arange(boxes.shape[0])[:, None], classes.shape)
    return jnp.zeros((boxes.shape[0], grid, grid, 6), jnp.float32).at[batch, row, col].set(rows, mode="drop")


def _offsets(grid: int, dtype) -> Array:
    """(grid, grid, 2): each cell's (column, row)."""
    rows, cols = jnp.meshgrid(jnp.arange(grid, dtype=dtype), jnp.arange(grid, dtype=dtype), indexing="ij")
    return jnp.stack([cols, rows], -1)


def _centers_and_sides(pred: Array, size: int, prior: float) -> tuple[Array, Array, Array]:
    """(sigmoid(tx, ty), center (.., 2), sides (.., 2)) of every cell's box."""
    cell = size / pred.shape[1]
    offset = activations.sigmoid(pred[..., 1:3])
    return offset, (_offsets(pred.shape[1], pred.dtype) + offset) * cell, prior * jnp.exp(pred[..., 3:5])


def decode_boxes(pred: Array, *, size: int = 64, prior: float = PRIOR) -> Array:
    """Boxes (B, S, S, 4) (x1, y1, x2, y2) in pixels from head outputs (B, S, S, 5 + K)."""
    _, center, sides = _centers_and_sides(pred, size, prior)
    return jnp.concatenate([center - sides / 2, center + sides / 2], -1)


@functools.partial(jax.jit, static_argnames=("size", "prior"))
def decode(pred: Array, *, size: int = 64, prior: float = PRIOR) -> tuple[Array, Array, Array]:
    """Every cell's detection: boxes (B, S*S, 4), scores (B, S*S) = sigmoid(o) max_k softmax(k),
    classes (B, S*S) int32 (the argmax). Filter and suppress with `fnn.detection.detect`. Jitted."""
    boxes = decode_boxes(pred, size=size, prior=prior)
    probabilities = activations.softmax(pred[..., 5:])
    scores = activations.sigmoid(pred[..., 0]) * jnp.max(probabilities, -1)
    batch = pred.shape[0]
    return (boxes.reshape(batch, -1, 4), scores.reshape(batch, -1),
            jnp.argmax(probabilities, -1).astype(jnp.int32).reshape(batch, -1))


def _checked(name: str, pred, target, reduction: str) -> tuple[Array, Array]:
    check_reduction(name, reduction)
    check_float(name, pred)
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.ndim != 4 or pred.shape[-1] < 6 or target.shape != (*pred.shape[:3], 6):
        raise ValueError(f"{name}: expected head outputs (B, S, S, 5 + K) and targets (B, S, S, 6), "
                         f"got {pred.shape} and {target.shape}")
    return pred, target.astype(pred.dtype)


def _parts(pred: Array, target: Array, noobject_weight: float):
    present = target[..., 0]
    labels = target[..., 1].astype(jnp.int32)
    return present, labels, present + noobject_weight * (1 - present)


def _detection_loss(pred: Array, target: Array, *, box_weight: float = 5.0, noobject_weight: float = 0.5,
                    size: int = 64, prior: float = PRIOR, reduction: str = "mean", weights=None) -> Array:
    """Per image: l = sum_cells w_o BCE(o, present) + sum_{cells with an object} (CE(k, class) + box_weight GIoU-loss).

    pred (B, S, S, 5 + K) head outputs, target (B, S, S, 6) from `encode`; w_o = 1 where an object
    is, noobject_weight elsewhere (YOLO's lambda_noobj). "mean" averages over images.
    Backward: each term's hand gradient (`fnn.losses`), the box's through the decoding:
    dcx = dx1 + dx2, dw = (dx2 - dx1) / 2;  dtx = c dcx s (1 - s), s = sigmoid(tx);  dtw = w dw.
    """
    pred, target = _checked("detection_loss", pred, target, reduction)
    present, labels, object_weights = _parts(pred, target, noobject_weight)
    items = (sigmoid_binary_cross_entropy(pred[..., 0], present, weights=object_weights, reduction="none")
             + softmax_cross_entropy(pred[..., 5:], labels, weights=present, reduction="none")
             + box_weight * giou(decode_boxes(pred, size=size, prior=prior), target[..., 2:],
                                 weights=present, reduction="none"))
    return reduce("detection_loss", jnp.sum(items, axis=(1, 2)), reduction, weights)


def _detection_loss_grad(pred: Array, target: Array, *, box_weight: float = 5.0, noobject_weight: float = 0.5,
                         size: int = 64, prior: float = PRIOR, reduction: str = "mean", weights=None) -> Array:
    pred, target = _checked("detection_loss.grad", pred, target, reduction)
    present, labels, object_weights = _parts(pred, target, noobject_weight)
    d_object = sigmoid_binary_cross_entropy.grad(pred[..., 0], present, weights=object_weights, reduction="sum")
    d_classes = softmax_cross_entropy.grad(pred[..., 5:], labels, weights=present, reduction="sum")
    offset, _, sides = _centers_and_sides(pred, size, prior)
    d_box = box_weight * giou.grad(decode_boxes(pred, size=size, prior=prior), target[..., 2:],
                                   weights=present, reduction="sum")
    d_center = d_box[..., :2] + d_box[..., 2:]
    d_sides = (d_box[..., 2:] - d_box[..., :2]) / 2
    d_offsets = d_center * (size / pred.shape[1]) * offset * (1 - offset)
    grad = jnp.concatenate([d_object[..., None], d_offsets, d_sides * sides, d_classes], -1)
    return scale("detection_loss.grad", grad, pred.shape[:1], reduction, weights)


detection_loss = Loss(_detection_loss, _detection_loss_grad, "detection_loss")
