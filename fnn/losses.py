"""Losses, each with its hand-derived gradient (DESIGN.md §3).

    name(pred, target, ..., reduction="mean")       -> scalar ("mean"/"sum") or per item ("none")
    name_grad(pred, target, ..., reduction="mean")  -> dL/dpred, shaped like pred

Items are elements for elementwise losses (mse, mae, huber, log_cosh, quantile,
hinge, squared_hinge, binary_cross_entropy, sigmoid_binary_cross_entropy, focal)
and examples for those over a class axis (softmax_cross_entropy, kl_divergence,
js_divergence), dice, contrastive pairs and triplets. With "none", `name_grad`
is the derivative of the sum. Shape mismatches raise ValueError naming the loss.
`gradient_of(loss)` finds the hand gradient of a loss (or a functools.partial of one).
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from . import activations
from ._losses_pair import contrastive, contrastive_grad, triplet, triplet_grad
from ._losses_probability import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    dice,
    dice_grad,
    focal,
    focal_grad,
    js_divergence,
    js_divergence_grad,
    kl_divergence,
    kl_divergence_grad,
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)
from ._losses_regression import (
    hinge,
    hinge_grad,
    huber,
    huber_grad,
    log_cosh,
    log_cosh_grad,
    mae,
    mae_grad,
    mse,
    mse_grad,
    quantile,
    quantile_grad,
    squared_hinge,
    squared_hinge_grad,
)
from .core import FunctionCase

GRADIENTS: dict[Callable, Callable] = {
    mse: mse_grad, mae: mae_grad, huber: huber_grad, log_cosh: log_cosh_grad,
    quantile: quantile_grad, hinge: hinge_grad, squared_hinge: squared_hinge_grad,
    binary_cross_entropy: binary_cross_entropy_grad,
    sigmoid_binary_cross_entropy: sigmoid_binary_cross_entropy_grad,
    softmax_cross_entropy: softmax_cross_entropy_grad, kl_divergence: kl_divergence_grad,
    js_divergence: js_divergence_grad, focal: focal_grad, dice: dice_grad,
    contrastive: contrastive_grad, triplet: triplet_grad,
}


def gradient_of(loss_fn: Callable) -> Callable:
    """The hand-derived gradient of `loss_fn`, from GRADIENTS; a functools.partial of a
    loss gives the same partial of its gradient. Raises ValueError when there is none."""
    if isinstance(loss_fn, functools.partial):
        return functools.partial(gradient_of(loss_fn.func), *loss_fn.args, **loss_fn.keywords)
    try:
        grad = GRADIENTS.get(loss_fn)
    except TypeError:                       # an unhashable callable cannot be registered
        grad = None
    if grad is None:
        name = getattr(loss_fn, "__name__", repr(loss_fn))
        raise ValueError(f"{name} has no hand-derived gradient; the losses in fnn.losses.GRADIENTS do")
    return grad


# ----------------------------------------------------------------- gradient-check rows
_SHAPE = (3, 5)


def _normal(key):
    k1, k2 = jax.random.split(key)
    return jax.random.normal(k1, _SHAPE, jnp.float64), jax.random.normal(k2, _SHAPE, jnp.float64)


def _probabilities(key):
    k1, k2 = jax.random.split(key)
    return (jax.random.uniform(k1, _SHAPE, jnp.float64, 0.05, 0.95),
            jax.random.uniform(k2, _SHAPE, jnp.float64))


def _logits_and_bits(key):
    logits, noise = _normal(key)
    return 3 * logits, (noise > 0).astype(jnp.float64)


def _signs(key):
    pred, noise = _normal(key)
    return 2 * pred, jnp.sign(noise)


def _logits_and_labels(key):
    logits, _ = _normal(key)
    return 3 * logits, jax.random.randint(key, _SHAPE[:1], 0, _SHAPE[1])


def _distributions(key, log_first=False):
    first, second = _normal(key)           # mild logits: no tiny probabilities
    first, second = 0.5 * first, 0.5 * second
    first = activations.log_softmax(first) if log_first else activations.softmax(first)
    return first, activations.softmax(second)


def _distances(key):
    k1, k2 = jax.random.split(key)
    return (jax.random.uniform(k1, _SHAPE[:1], jnp.float64, 0.1, 2.0),
            jax.random.bernoulli(k2, 0.5, _SHAPE[:1]).astype(jnp.int32))


def _triplets(key):
    k1, k2 = jax.random.split(key)
    return (*_normal(k1), jax.random.normal(k2, _SHAPE, jnp.float64))


def _case(name: str, loss: Callable, inputs: Callable, **options) -> FunctionCase:
    """A gradient-check row for `loss` (mean reduction) on `inputs(key)`; the
    hand gradient covers pred (all three arrays for triplet), not the target."""
    grad = gradient_of(loss)

    def make(key):
        primals = inputs(key)

        def f(*arrays):
            return loss(*arrays, **options)

        def hand_vjp(primals, cotangent):
            grads = grad(*primals, **options)
            if isinstance(grads, tuple):
                return tuple(cotangent * g for g in grads)
            return (cotangent * grads,) + (None,) * (len(primals) - 1)

        return f, hand_vjp, primals

    return FunctionCase(name, make)


CASES = (
    _case("mse", mse, _normal),
    _case("mae", mae, _normal),
    _case("huber", huber, _normal, delta=0.7),
    _case("log_cosh", log_cosh, _normal),
    _case("quantile", quantile, _normal, q=0.3),
    _case("hinge", hinge, _signs),
    _case("squared_hinge", squared_hinge, _signs),
    _case("binary_cross_entropy", binary_cross_entropy, _probabilities),
    _case("sigmoid_binary_cross_entropy", sigmoid_binary_cross_entropy, _logits_and_bits),
    _case("softmax_cross_entropy-labels", softmax_cross_entropy, _logits_and_labels),
    _case("softmax_cross_entropy-soft", softmax_cross_entropy, _distributions),
    _case("softmax_cross_entropy-smoothed", softmax_cross_entropy, _logits_and_labels, label_smoothing=0.1),
    _case("kl_divergence", kl_divergence, functools.partial(_distributions, log_first=True)),
    _case("js_divergence", js_divergence, _distributions),
    _case("focal", focal, _logits_and_bits),
    _case("focal-gamma0.5-no-alpha", focal, _logits_and_bits, gamma=0.5, alpha=None),
    _case("dice", dice, _probabilities),
    _case("contrastive", contrastive, _distances),
    _case("triplet", triplet, _triplets),
)

__all__ = [
    "GRADIENTS", "binary_cross_entropy", "binary_cross_entropy_grad", "contrastive",
    "contrastive_grad", "dice", "dice_grad", "focal", "focal_grad", "gradient_of", "hinge",
    "hinge_grad", "huber", "huber_grad", "js_divergence", "js_divergence_grad", "kl_divergence",
    "kl_divergence_grad", "log_cosh", "log_cosh_grad", "mae", "mae_grad", "mse", "mse_grad",
    "quantile", "quantile_grad", "sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy_grad",
    "softmax_cross_entropy", "softmax_cross_entropy_grad", "squared_hinge", "squared_hinge_grad",
    "triplet", "triplet_grad",
]
