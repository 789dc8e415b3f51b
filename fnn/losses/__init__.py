"""fnn.losses: every loss a `Loss` record with its hand-derived gradient (docs/design.md §3).

    loss(pred, target, *, <hyperparameters>, reduction="mean", weights=None) -> value
    loss.grad(pred, target, ...)     -> dL/dpred, shaped like pred
    loss.partial(delta=2.0)          -> a Loss again, with the hyperparameter fixed
    Loss(value_fn, grad_fn, "name")  -> your own loss, usable by fit(..., grads="manual")

"mean" and "sum" reduce over the items (elements for elementwise losses, examples for
those over a class axis, pairs, triplets), "none" returns them; `.grad` of "none" is the
derivative of the sum. `weights` (broadcastable to the items) weigh each item, so padded
positions with weight 0 count for nothing and "mean" is sum(w l) / sum(w) (see `base`).
Shape mismatches raise ValueError naming the loss.
"""
from .base import REDUCTIONS as REDUCTIONS
from .base import Loss as Loss
from .boxes import giou as giou
from .boxes import iou as iou
from .ctc import ctc as ctc
from .gaussian import gaussian_kl as gaussian_kl
from .pair import contrastive as contrastive
from .pair import triplet as triplet
from .perceptual import perceptual as perceptual
from .probability import binary_cross_entropy as binary_cross_entropy
from .probability import dice as dice
from .probability import focal as focal
from .probability import js_divergence as js_divergence
from .probability import kl_divergence as kl_divergence
from .probability import sigmoid_binary_cross_entropy as sigmoid_binary_cross_entropy
from .probability import softmax_cross_entropy as softmax_cross_entropy
from .regression import hinge as hinge
from .regression import huber as huber
from .regression import log_cosh as log_cosh
from .regression import mae as mae
from .regression import mse as mse
from .regression import quantile as quantile
from .regression import squared_hinge as squared_hinge

__all__ = [
    "REDUCTIONS", "Loss", "binary_cross_entropy", "contrastive", "ctc", "dice", "focal", "gaussian_kl", "giou", "hinge",
    "huber", "iou", "js_divergence", "kl_divergence", "log_cosh", "mae", "mse", "perceptual", "quantile",
    "sigmoid_binary_cross_entropy", "softmax_cross_entropy", "squared_hinge", "triplet",
]
