"""Elementwise regression and margin losses, each beside its hand-derived gradient.

All take `pred` and `target` of one shape, compute one value per element and
average over all elements by default (PyTorch's convention). `name_grad`
returns dL/dpred, of pred's shape. Public through `fnn.losses`.
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from . import activations
from ._losses_base import Array, paired, reduce, scale


def mse(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Mean squared error: l = (pred - target)^2 per element.

    Derivative: dl/dpred = 2 (pred - target).
    """
    pred, target = paired("mse", pred, target, reduction)
    return reduce((pred - target) ** 2, reduction)


def mse_grad(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """dL/dpred of `mse`: 2 (pred - target), divided by pred.size for "mean"."""
    pred, target = paired("mse_grad", pred, target, reduction)
    return scale(2 * (pred - target), pred.size, reduction)


def mae(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Mean absolute error: l = |pred - target| per element.

    Derivative: dl/dpred = sign(pred - target) (0 where pred == target).
    """
    pred, target = paired("mae", pred, target, reduction)
    return reduce(jnp.abs(pred - target), reduction)


def mae_grad(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """dL/dpred of `mae`: sign(pred - target), divided by pred.size for "mean"."""
    pred, target = paired("mae_grad", pred, target, reduction)
    return scale(jnp.sign(pred - target), pred.size, reduction)


def huber(pred: Array, target: Array, delta: float = 1.0, reduction: str = "mean") -> Array:
    """Huber loss, r = pred - target: l = r^2 / 2 if |r| <= delta else delta (|r| - delta / 2).

    Same as optax.huber_loss and torch.nn.HuberLoss (not SmoothL1, which divides by delta).
    Derivative: dl/dpred = clip(r, -delta, delta).
    """
    pred, target = paired("huber", pred, target, reduction)
    r = jnp.abs(pred - target)
    return reduce(jnp.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)), reduction)


def huber_grad(pred: Array, target: Array, delta: float = 1.0, reduction: str = "mean") -> Array:
    """dL/dpred of `huber`: clip(pred - target, -delta, delta), divided by pred.size for "mean"."""
    pred, target = paired("huber_grad", pred, target, reduction)
    return scale(jnp.clip(pred - target, -delta, delta), pred.size, reduction)


def log_cosh(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Log-cosh loss: l = log cosh(r), r = pred - target, as |r| + softplus(-2|r|) - log 2 (stable).

    Derivative: dl/dpred = tanh(r).
    """
    pred, target = paired("log_cosh", pred, target, reduction)
    r = jnp.abs(pred - target)
    return reduce(r + activations.softplus(-2 * r) - math.log(2.0), reduction)


def log_cosh_grad(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """dL/dpred of `log_cosh`: tanh(pred - target), divided by pred.size for "mean"."""
    pred, target = paired("log_cosh_grad", pred, target, reduction)
    return scale(jnp.tanh(pred - target), pred.size, reduction)


def _check_quantile(name: str, q) -> None:
    if isinstance(q, (int, float)) and not 0 < q < 1:
        raise ValueError(f"{name}: q must lie in (0, 1), got {q!r}")


def quantile(pred: Array, target: Array, q: float, reduction: str = "mean") -> Array:
    """Quantile (pinball) loss, r = target - pred: l = q r if r >= 0 else (q - 1) r.

    q in (0, 1) is the quantile predicted: under-predicting costs q per unit,
    over-predicting 1 - q. Derivative: dl/dpred = -q if r > 0 else 1 - q (r = 0 takes 1 - q).
    """
    _check_quantile("quantile", q)
    pred, target = paired("quantile", pred, target, reduction)
    r = target - pred
    return reduce(jnp.maximum(q * r, (q - 1) * r), reduction)


def quantile_grad(pred: Array, target: Array, q: float, reduction: str = "mean") -> Array:
    """dL/dpred of `quantile`: -q where target > pred, else 1 - q; divided by pred.size for "mean"."""
    _check_quantile("quantile_grad", q)
    pred, target = paired("quantile_grad", pred, target, reduction)
    grad = jnp.where(target > pred, -q, 1 - q).astype(pred.dtype)
    return scale(grad, pred.size, reduction)


def hinge(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Hinge loss for targets in {-1, +1} (not {0, 1}): l = max(0, 1 - target pred).

    Same as optax.hinge_loss. Derivative: dl/dpred = -target where target pred < 1, else 0.
    """
    pred, target = paired("hinge", pred, target, reduction)
    return reduce(jnp.maximum(0, 1 - target * pred), reduction)


def hinge_grad(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """dL/dpred of `hinge`: -target where target pred < 1, else 0; divided by pred.size for "mean"."""
    pred, target = paired("hinge_grad", pred, target, reduction)
    return scale(jnp.where(target * pred < 1, -target, 0), pred.size, reduction)


def squared_hinge(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Squared hinge loss for targets in {-1, +1} (not {0, 1}): l = max(0, 1 - target pred)^2.

    Derivative: dl/dpred = -2 target max(0, 1 - target pred).
    """
    pred, target = paired("squared_hinge", pred, target, reduction)
    return reduce(jnp.maximum(0, 1 - target * pred) ** 2, reduction)


def squared_hinge_grad(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """dL/dpred of `squared_hinge`: -2 target max(0, 1 - target pred); / pred.size for "mean"."""
    pred, target = paired("squared_hinge_grad", pred, target, reduction)
    return scale(-2 * target * jnp.maximum(0, 1 - target * pred), pred.size, reduction)
