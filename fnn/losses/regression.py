"""Elementwise regression and margin losses, each a `Loss` record with its hand-derived gradient.

All take `pred` and `target` of one shape, compute one value per element and
average over all elements by default (PyTorch's convention); `weights=` weighs
the elements (see `fnn.losses.base`). `loss.grad` returns dL/dpred, of pred's shape.
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from .. import activations
from ._cases import case, normal, signs
from .base import Array, Loss, paired, reduce, scale


def _mse(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """Mean squared error: l = (pred - target)^2 per element.

    Derivative: dl/dpred = 2 (pred - target).
    """
    pred, target = paired("mse", pred, target, reduction)
    return reduce("mse", (pred - target) ** 2, reduction, weights)


def _mse_grad(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    pred, target = paired("mse.grad", pred, target, reduction)
    return scale("mse.grad", 2 * (pred - target), pred.shape, reduction, weights)


def _mae(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """Mean absolute error: l = |pred - target| per element.

    Derivative: dl/dpred = sign(pred - target) (0 where pred == target).
    """
    pred, target = paired("mae", pred, target, reduction)
    return reduce("mae", jnp.abs(pred - target), reduction, weights)


def _mae_grad(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    pred, target = paired("mae.grad", pred, target, reduction)
    return scale("mae.grad", jnp.sign(pred - target), pred.shape, reduction, weights)


def _huber(pred: Array, target: Array, *, delta: float = 1.0, reduction: str = "mean",
           weights=None) -> Array:
    """Huber loss, r = pred - target: l = r^2 / 2 if |r| <= delta else delta (|r| - delta / 2).

    Same as optax.huber_loss and torch.nn.HuberLoss (not SmoothL1, which divides by delta).
    Derivative: dl/dpred = clip(r, -delta, delta).
    """
    pred, target = paired("huber", pred, target, reduction)
    r = jnp.abs(pred - target)
    values = jnp.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))
    return reduce("huber", values, reduction, weights)


def _huber_grad(pred: Array, target: Array, *, delta: float = 1.0, reduction: str = "mean",
                weights=None) -> Array:
    pred, target = paired("huber.grad", pred, target, reduction)
    return scale("huber.grad", jnp.clip(pred - target, -delta, delta), pred.shape, reduction, weights)


def _log_cosh(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """Log-cosh loss: l = log cosh(r), r = pred - target, as |r| + softplus(-2|r|) - log 2 (stable).

    Derivative: dl/dpred = tanh(r).
    """
    pred, target = paired("log_cosh", pred, target, reduction)
    r = jnp.abs(pred - target)
    return reduce("log_cosh", r + activations.softplus(-2 * r) - math.log(2.0), reduction, weights)


def _log_cosh_grad(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    pred, target = paired("log_cosh.grad", pred, target, reduction)
    return scale("log_cosh.grad", jnp.tanh(pred - target), pred.shape, reduction, weights)


def _check_quantile(name: str, q) -> None:
    if isinstance(q, (int, float)) and not 0 < q < 1:
        raise ValueError(f"{name}: q must lie in (0, 1), got {q!r}")


def _quantile(pred: Array, target: Array, *, q: float = 0.5, reduction: str = "mean",
              weights=None) -> Array:
    """Quantile (pinball) loss, r = target - pred: l = q r if r >= 0 else (q - 1) r.

    q in (0, 1) is the quantile predicted (0.5: half the absolute error): under-predicting
    costs q per unit, over-predicting 1 - q.
    Derivative: dl/dpred = -q if r > 0 else 1 - q (r = 0 takes 1 - q).
    """
    _check_quantile("quantile", q)
    pred, target = paired("quantile", pred, target, reduction)
    r = target - pred
    return reduce("quantile", jnp.maximum(q * r, (q - 1) * r), reduction, weights)


def _quantile_grad(pred: Array, target: Array, *, q: float = 0.5, reduction: str = "mean",
                   weights=None) -> Array:
    _check_quantile("quantile.grad", q)
    pred, target = paired("quantile.grad", pred, target, reduction)
    grad = jnp.where(target > pred, -q, 1 - q).astype(pred.dtype)
    return scale("quantile.grad", grad, pred.shape, reduction, weights)


def _hinge(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """Hinge loss for targets in {-1, +1} (not {0, 1}): l = max(0, 1 - target pred).

    Same as optax.hinge_loss. Derivative: dl/dpred = -target where target pred < 1, else 0.
    """
    pred, target = paired("hinge", pred, target, reduction)
    return reduce("hinge", jnp.maximum(0, 1 - target * pred), reduction, weights)


def _hinge_grad(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    pred, target = paired("hinge.grad", pred, target, reduction)
    return scale("hinge.grad", jnp.where(target * pred < 1, -target, 0), pred.shape, reduction, weights)


def _squared_hinge(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """Squared hinge loss for targets in {-1, +1} (not {0, 1}): l = max(0, 1 - target pred)^2.

    Derivative: dl/dpred = -2 target max(0, 1 - target pred).
    """
    pred, target = paired("squared_hinge", pred, target, reduction)
    return reduce("squared_hinge", jnp.maximum(0, 1 - target * pred) ** 2, reduction, weights)


def _squared_hinge_grad(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    pred, target = paired("squared_hinge.grad", pred, target, reduction)
    grad = -2 * target * jnp.maximum(0, 1 - target * pred)
    return scale("squared_hinge.grad", grad, pred.shape, reduction, weights)


mse = Loss(_mse, _mse_grad, "mse")
mae = Loss(_mae, _mae_grad, "mae")
huber = Loss(_huber, _huber_grad, "huber")
log_cosh = Loss(_log_cosh, _log_cosh_grad, "log_cosh")
quantile = Loss(_quantile, _quantile_grad, "quantile")
hinge = Loss(_hinge, _hinge_grad, "hinge")
squared_hinge = Loss(_squared_hinge, _squared_hinge_grad, "squared_hinge")

CASES = (
    case("mse", mse, normal),
    case("mse-weighted", mse, normal, weighted=True),
    case("mae", mae, normal),
    case("huber", huber.partial(delta=0.7), normal),
    case("huber-weighted", huber.partial(delta=0.7), normal, weighted=True),
    case("log_cosh", log_cosh, normal),
    case("quantile", quantile.partial(q=0.3), normal),
    case("hinge", hinge, signs),
    case("squared_hinge", squared_hinge, signs),
)
