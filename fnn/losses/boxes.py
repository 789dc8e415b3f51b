"""Box-regression losses on corner boxes (x1, y1, x2, y2), each a `Loss` record with its
hand-derived gradient with respect to the predicted corners.

One item per box (the last axis holds its 4 corners, x2 >= x1 and y2 >= y1), so
"mean" averages over boxes and `weights=` has the boxes' shape (a detector weighs
the cells that hold an object 1 and the others 0). As torchvision.ops'
`generalized_box_iou_loss`, eps = 1e-7 keeps the ratios finite for empty boxes:

    IoU = I / (U + eps),   GIoU = IoU - (C - U) / (C + eps)
    I = intersection area, U = area(pred) + area(target) - I, C = area of the smallest enclosing box.

Backward through the corners: I = iw ih with iw = max(0, min(px2, tx2) - max(px1, tx1))
(ih alike), C = cw ch with cw = max(px2, tx2) - min(px1, tx1), area(pred) = (px2 - px1)(py2 - py1).
At a tie the subgradient goes to pred: d min(p, t)/dp = 1 where p <= t, d max(p, t)/dp = 1
where p >= t; touching boxes (iw = 0 or ih = 0) give I no gradient.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._cases import SHAPE, case
from .base import Array, Loss, check_float, check_reduction, check_same_shape, reduce, scale


class _Terms(NamedTuple):
    """The areas of a (pred, target) pair of boxes and the masks of their corner comparisons."""
    inter: Array        # I
    union: Array        # U
    hull: Array         # C
    sides: Array        # (..., 4): iw, ih, cw, ch
    size: Array         # (..., 2): pred's width and height
    lower: Array        # (..., 4): pred's corner is the intersection's (max of x1, y1; min of x2, y2)
    outer: Array        # (..., 4): pred's corner is the enclosing box's (min of x1, y1; max of x2, y2)


def _checked(name: str, pred, target, reduction: str) -> tuple[Array, Array]:
    check_reduction(name, reduction)
    check_float(name, pred)
    check_same_shape(name, pred, target)
    pred = jnp.asarray(pred)
    if pred.ndim < 1 or pred.shape[-1] != 4:
        raise ValueError(f"{name}: expected boxes of shape (..., 4) as (x1, y1, x2, y2), got {pred.shape}")
    return pred, jnp.asarray(target).astype(pred.dtype)


def _terms(pred: Array, target: Array) -> _Terms:
    first = jnp.arange(4) < 2                                   # x1, y1 | x2, y2
    inner = jnp.where(first, jnp.maximum(pred, target), jnp.minimum(pred, target))
    outer = jnp.where(first, jnp.minimum(pred, target), jnp.maximum(pred, target))
    overlap = jnp.maximum(0, inner[..., 2:] - inner[..., :2])    # iw, ih
    span = outer[..., 2:] - outer[..., :2]                       # cw, ch
    size = pred[..., 2:] - pred[..., :2]
    target_size = target[..., 2:] - target[..., :2]
    inter = overlap[..., 0] * overlap[..., 1]
    union = size[..., 0] * size[..., 1] + target_size[..., 0] * target_size[..., 1] - inter
    lower = jnp.where(first, pred >= target, pred <= target)
    return _Terms(inter, union, span[..., 0] * span[..., 1], jnp.concatenate([overlap, span], -1), size,
                  lower, jnp.where(first, pred <= target, pred >= target))


def _corner_grad(t: _Terms, d_inter: Array, d_area: Array, d_hull: Array) -> Array:
    """dL/dpred (..., 4) from dL/dI, dL/darea(pred) and dL/dC, through the corners."""
    iw, ih, cw, ch = (t.sides[..., i] for i in range(4))
    sign = jnp.array([-1.0, -1.0, 1.0, 1.0], d_inter.dtype)     # d(x2 - x1)/d(x1, x2) = -1, +1
    overlapping = ((iw > 0) & (ih > 0))[..., None]
    d_overlap = jnp.stack([ih, iw, ih, iw], -1) * d_inter[..., None]
    d_span = jnp.stack([ch, cw, ch, cw], -1) * d_hull[..., None]
    d_size = jnp.stack([t.size[..., 1], t.size[..., 0]] * 2, -1) * d_area[..., None]
    inter_part = jnp.where(overlapping & t.lower, sign * d_overlap, 0)
    return inter_part + jnp.where(t.outer, sign * d_span, 0) + sign * d_size


def _iou(pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean", weights=None) -> Array:
    """IoU loss per box: l = 1 - I / (U + eps) (see the module docstring for I, U and the ties).

    pred, target: (..., 4) corner boxes (x1, y1, x2, y2). Zero for a perfect box, 1 for disjoint ones
    (which get no gradient: use `giou` to pull them together).
    Derivative, Ue = U + eps: dl/dI = -(Ue + I) / Ue^2,  dl/darea(pred) = I / Ue^2, then through the corners.
    """
    pred, target = _checked("iou", pred, target, reduction)
    t = _terms(pred, target)
    return reduce("iou", 1 - t.inter / (t.union + eps), reduction, weights)


def _iou_grad(pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean", weights=None) -> Array:
    pred, target = _checked("iou.grad", pred, target, reduction)
    t = _terms(pred, target)
    union = t.union + eps
    grad = _corner_grad(t, -(union + t.inter) / union**2, t.inter / union**2, jnp.zeros_like(t.hull))
    return scale("iou.grad", grad, t.inter.shape, reduction, weights)


def _giou(pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean", weights=None) -> Array:
    """Generalized IoU loss (Rezatofighi et al. 2019) per box: l = 1 - IoU + (C - U) / (C + eps).

    pred, target: (..., 4) corner boxes; in [0, 2), and disjoint boxes still get a gradient through
    the enclosing box C. Equal to torchvision.ops.generalized_box_iou_loss.
    Derivative, Ue = U + eps, Ce = C + eps: dl/dI = -(Ue + I) / Ue^2 + 1/Ce,
    dl/darea(pred) = I / Ue^2 - 1/Ce,  dl/dC = (U + eps) / Ce^2, then through the corners.
    """
    pred, target = _checked("giou", pred, target, reduction)
    t = _terms(pred, target)
    values = 1 - t.inter / (t.union + eps) + (t.hull - t.union) / (t.hull + eps)
    return reduce("giou", values, reduction, weights)


def _giou_grad(pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean", weights=None) -> Array:
    pred, target = _checked("giou.grad", pred, target, reduction)
    t = _terms(pred, target)
    union, hull = t.union + eps, t.hull + eps
    grad = _corner_grad(t, -(union + t.inter) / union**2 + 1 / hull, t.inter / union**2 - 1 / hull,
                        union / hull**2)
    return scale("giou.grad", grad, t.inter.shape, reduction, weights)


iou = Loss(_iou, _iou_grad, "iou")
giou = Loss(_giou, _giou_grad, "giou")


def box_pairs(key) -> tuple[Array, Array]:
    """(3, 5, 4) float64 pred and target boxes whose corners differ by 0.05 to 0.45 (no ties);
    about a third of the preds are moved 3 to the right, away from their targets (disjoint)."""
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    corner = jax.random.uniform(k1, (*SHAPE, 2), jnp.float64, 0.0, 2.0)
    target = jnp.concatenate([corner, corner + jax.random.uniform(k2, (*SHAPE, 2), jnp.float64, 1.0, 2.0)], -1)
    offset = jax.random.uniform(k3, (*SHAPE, 4), jnp.float64, 0.05, 0.45)
    signs = jnp.where(jax.random.bernoulli(k4, 0.5, (*SHAPE, 4)), 1.0, -1.0)
    away = jnp.where(jax.random.bernoulli(k5, 0.35, (*SHAPE, 1)), 3.0, 0.0) * jnp.array([1.0, 0.0, 1.0, 0.0])
    return target + signs * offset + away, target


CASES = (
    case("iou", iou, box_pairs),
    case("iou-weighted", iou, box_pairs, weighted=True),
    case("giou", giou, box_pairs),
    case("giou-weighted", giou, box_pairs, weighted=True),
)
