"""Probabilistic losses, each a `Loss` record with its hand-derived gradient dL/dpred.

Binary losses (binary_cross_entropy, sigmoid_binary_cross_entropy, focal) are
elementwise and average over all elements. Losses over the class axis (the
last axis: softmax_cross_entropy, kl_divergence, js_divergence) and dice
(over all non-batch axes) give one value per example and average over
examples, as PyTorch's "batchmean"; `weights=` then has the examples' shape
((B, T) for (B, T, C) logits: a padded position weighs 0).
"""
from __future__ import annotations

import jax.numpy as jnp

from .. import activations
from ._cases import (
    case,
    distributions,
    log_distributions,
    logits_and_bits,
    logits_and_labels,
    probabilities,
    sequence_logits_and_labels,
)
from .base import Array, Loss, check_float, check_reduction, paired, reduce, scale, xlogy


def _binary_cross_entropy(pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean",
                          weights=None) -> Array:
    """Cross-entropy of probabilities: l = -(t log p + (1 - t) log(1 - p)), p = clip(pred, eps, 1 - eps).

    pred is the probability of the positive class, in [0, 1]; target t in [0, 1]
    (hard or soft). The clip (Keras' eps = 1e-7) keeps l finite at p = 0 or 1;
    the gradient is 0 where pred is clipped. Derivative: (p - t) / (p (1 - p)).
    """
    pred, target = paired("binary_cross_entropy", pred, target, reduction)
    p = jnp.clip(pred, eps, 1 - eps)
    values = -(target * jnp.log(p) + (1 - target) * jnp.log1p(-p))
    return reduce("binary_cross_entropy", values, reduction, weights)


def _binary_cross_entropy_grad(pred: Array, target: Array, *, eps: float = 1e-7,
                               reduction: str = "mean", weights=None) -> Array:
    pred, target = paired("binary_cross_entropy.grad", pred, target, reduction)
    p = jnp.clip(pred, eps, 1 - eps)
    inside = (pred >= eps) & (pred <= 1 - eps)
    grad = jnp.where(inside, (p - target) / (p * (1 - p)), 0)
    return scale("binary_cross_entropy.grad", grad, pred.shape, reduction, weights)


def _sigmoid_binary_cross_entropy(logits: Array, target: Array, *, reduction: str = "mean",
                                  weights=None) -> Array:
    """Cross-entropy of sigmoid(logits): l = max(x, 0) - x t + log1p(exp(-|x|)), x = logits.

    Stable for any |x|; target t in [0, 1]. Same as optax.sigmoid_binary_cross_entropy.
    Derivative: dl/dx = sigmoid(x) - t.
    """
    logits, target = paired("sigmoid_binary_cross_entropy", logits, target, reduction)
    values = activations.softplus(logits) - logits * target
    return reduce("sigmoid_binary_cross_entropy", values, reduction, weights)


def _sigmoid_binary_cross_entropy_grad(logits: Array, target: Array, *, reduction: str = "mean",
                                       weights=None) -> Array:
    name = "sigmoid_binary_cross_entropy.grad"
    logits, target = paired(name, logits, target, reduction)
    return scale(name, activations.sigmoid(logits) - target, logits.shape, reduction, weights)


def _focal_terms(logits: Array, target: Array, alpha: float | None) -> tuple:
    """(ce, u, w, s, 1 - s) of `focal`: u = 1 - p_t computed without cancellation."""
    s, s_minus = activations.sigmoid(logits), activations.sigmoid(-logits)
    ce = activations.softplus(logits) - logits * target
    u = target * s_minus + (1 - target) * s
    w = 1 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    return ce, u, w, s, s_minus


def _focal(logits: Array, target: Array, *, gamma: float = 2.0, alpha: float | None = 0.25,
           reduction: str = "mean", weights=None) -> Array:
    """Sigmoid focal loss (Lin et al. 2017, RetinaNet): l = w ce (1 - p_t)^gamma, elementwise.

    ce = sigmoid_binary_cross_entropy(x, t), p_t = t s + (1 - t)(1 - s), s = sigmoid(x),
    w = alpha t + (1 - alpha)(1 - t) (alpha is the weight of positives; None: w = 1).
    As optax.sigmoid_focal_loss and torchvision's; "mean" averages over all elements
    (RetinaNet divides the "sum" by the number of positives instead).
    Derivative, u = 1 - p_t: w [(s - t) u^gamma + ce gamma u^(gamma-1) s (1 - s)(1 - 2t)].
    """
    logits, target = paired("focal", logits, target, reduction)
    ce, u, w, _, _ = _focal_terms(logits, target, alpha)
    return reduce("focal", w * ce * u**gamma, reduction, weights)


def _focal_grad(logits: Array, target: Array, *, gamma: float = 2.0, alpha: float | None = 0.25,
                reduction: str = "mean", weights=None) -> Array:
    """u^(gamma-1) is taken as 0 where u = 0."""
    logits, target = paired("focal.grad", logits, target, reduction)
    ce, u, w, s, s_minus = _focal_terms(logits, target, alpha)
    du = jnp.where(u > 0, gamma * u ** (gamma - 1), 0) * s * s_minus * (1 - 2 * target)
    grad = w * ((s - target) * u**gamma + ce * du)
    return scale("focal.grad", grad, logits.shape, reduction, weights)


def _class_target(name: str, logits: Array, target: Array, reduction: str) -> tuple:
    """Check logits (..., C) with integer labels (...) or a distribution (..., C);
    return the targets as (..., C) floats and a (...) mask of labels in [0, C)."""
    check_reduction(name, reduction)
    check_float(name, logits)
    logits, target = jnp.asarray(logits), jnp.asarray(target)
    if jnp.issubdtype(target.dtype, jnp.integer):
        if logits.ndim < 1 or target.shape != logits.shape[:-1]:
            raise ValueError(f"{name}: integer labels must have the shape of logits without the class "
                             f"axis, got logits {logits.shape} and labels {target.shape}")
        classes = jnp.arange(logits.shape[-1], dtype=target.dtype)
        valid = (target >= 0) & (target < logits.shape[-1])
        return logits, (target[..., None] == classes).astype(logits.dtype), valid
    if logits.ndim < 1 or target.shape != logits.shape:
        raise ValueError(f"{name}: logits and targets must have the same shape, got logits "
                         f"{logits.shape} and targets {target.shape}")
    return logits, target.astype(logits.dtype), jnp.ones(logits.shape[:-1], bool)


def _smoothed(name: str, target: Array, label_smoothing: float) -> Array:
    """t <- (1 - s) t + s / C (Szegedy et al. 2016), s = label_smoothing in [0, 1)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"{name}: label_smoothing must lie in [0, 1), got {label_smoothing!r}")
    if label_smoothing == 0.0:
        return target
    return (1 - label_smoothing) * target + label_smoothing / target.shape[-1]


def _softmax_cross_entropy(logits: Array, target: Array, *, label_smoothing: float = 0.0,
                           reduction: str = "mean", weights=None) -> Array:
    """Cross-entropy of softmax(logits) over the last axis: l = -sum_c t_c log_softmax(x)_c.

    target: integer labels (...) in [0, C), or one-hot / soft targets (..., C), smoothed
    to (1 - s) t + s / C by `label_smoothing` s. Labels outside [0, C) cannot be checked
    under jit: their examples give NaN (unless their weight is 0). "mean" averages over
    examples (all leading axes: (B, T) for (B, T, C) logits). Stable for any |x|.
    Derivative: dl/dx = softmax(x) sum_c t_c - t (softmax(x) - onehot for labels).
    """
    name = "softmax_cross_entropy"
    logits, target, valid = _class_target(name, logits, target, reduction)
    target = _smoothed(name, target, label_smoothing)
    per_example = -jnp.sum(target * activations.log_softmax(logits), axis=-1)
    return reduce(name, jnp.where(valid, per_example, jnp.nan), reduction, weights)


def _softmax_cross_entropy_grad(logits: Array, target: Array, *, label_smoothing: float = 0.0,
                                reduction: str = "mean", weights=None) -> Array:
    name = "softmax_cross_entropy.grad"
    logits, target, valid = _class_target(name, logits, target, reduction)
    target = _smoothed(name, target, label_smoothing)
    grad = activations.softmax(logits) * jnp.sum(target, axis=-1, keepdims=True) - target
    return scale(name, jnp.where(valid[..., None], grad, jnp.nan), valid.shape, reduction, weights)


def _per_example(name: str, pred: Array, target: Array, reduction: str) -> tuple:
    """`paired`, plus a check that pred has the axis a loss reduces over."""
    pred, target = paired(name, pred, target, reduction)
    if pred.ndim < 1 or pred.shape[-1] == 0:
        raise ValueError(f"{name}: expected pred of shape (..., C) with C >= 1, got {pred.shape}")
    return pred, target


def _kl_divergence(log_pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """KL(target || pred) over the last axis, from LOG-probabilities log_pred = log q and
    probabilities target = p: l = sum_c p_c (log p_c - log q_c), with 0 log 0 = 0.

    The convention of torch.nn.functional.kl_div(input=log q, target=p) and
    optax.kl_divergence; "mean" averages over examples (PyTorch's "batchmean").
    Derivative: dl/dlog_pred = -p.
    """
    log_pred, target = _per_example("kl_divergence", log_pred, target, reduction)
    per_example = jnp.sum(xlogy(target, target) - target * log_pred, axis=-1)
    return reduce("kl_divergence", per_example, reduction, weights)


def _kl_divergence_grad(log_pred: Array, target: Array, *, reduction: str = "mean",
                        weights=None) -> Array:
    log_pred, target = _per_example("kl_divergence.grad", log_pred, target, reduction)
    return scale("kl_divergence.grad", -target, log_pred.shape[:-1], reduction, weights)


def _js_divergence(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    """Jensen-Shannon divergence of PROBABILITIES p = pred and q = target over the last axis:
    l = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2, natural log (0 <= l <= log 2).

    "mean" averages over examples. Derivative: dl/dp = log(p / m) / 2 (-inf where p = 0 < q).
    """
    pred, target = _per_example("js_divergence", pred, target, reduction)
    m = 0.5 * (pred + target)
    per_point = xlogy(pred, pred) + xlogy(target, target) - xlogy(pred + target, m)
    return reduce("js_divergence", 0.5 * jnp.sum(per_point, axis=-1), reduction, weights)


def _js_divergence_grad(pred: Array, target: Array, *, reduction: str = "mean", weights=None) -> Array:
    pred, target = _per_example("js_divergence.grad", pred, target, reduction)
    m = 0.5 * (pred + target)
    grad = jnp.where(m == 0, 0, 0.5 * (jnp.log(pred) - jnp.log(m)))
    return scale("js_divergence.grad", grad, pred.shape[:-1], reduction, weights)


def _dice_terms(name: str, pred: Array, target: Array, smooth: float, reduction: str) -> tuple:
    """(pred, target, numerator 2I + smooth, denominator P + T + smooth), per example."""
    pred, target = paired(name, pred, target, reduction)
    if pred.ndim < 1:
        raise ValueError(f"{name}: expected pred of shape (B, ...), got a scalar")
    axes = tuple(range(1, pred.ndim))
    numerator = 2 * jnp.sum(pred * target, axis=axes) + smooth
    return pred, target, numerator, jnp.sum(pred + target, axis=axes) + smooth


def _dice(pred: Array, target: Array, *, smooth: float = 1.0, reduction: str = "mean",
          weights=None) -> Array:
    """Soft dice loss per example (Milletari et al. 2016): l = 1 - (2 I + smooth) / (P + T + smooth).

    pred: probabilities (B, ...); target (B, ...) in [0, 1]; I = sum p t, P = sum p,
    T = sum t over all non-batch axes. "mean" averages over examples; weights are (B,).
    Derivative: dl/dp_j = ((2 I + smooth) - 2 t_j D) / D^2, D = P + T + smooth.
    """
    _, _, numerator, denominator = _dice_terms("dice", pred, target, smooth, reduction)
    return reduce("dice", 1 - numerator / denominator, reduction, weights)


def _dice_grad(pred: Array, target: Array, *, smooth: float = 1.0, reduction: str = "mean",
               weights=None) -> Array:
    pred, target, numerator, denominator = _dice_terms("dice.grad", pred, target, smooth, reduction)
    per_example = (1,) * (pred.ndim - 1)
    numerator, denominator = numerator.reshape(-1, *per_example), denominator.reshape(-1, *per_example)
    grad = (numerator - 2 * target * denominator) / denominator**2
    return scale("dice.grad", grad, pred.shape[:1], reduction, weights)


binary_cross_entropy = Loss(_binary_cross_entropy, _binary_cross_entropy_grad, "binary_cross_entropy")
sigmoid_binary_cross_entropy = Loss(_sigmoid_binary_cross_entropy, _sigmoid_binary_cross_entropy_grad,
                                    "sigmoid_binary_cross_entropy")
focal = Loss(_focal, _focal_grad, "focal")
softmax_cross_entropy = Loss(_softmax_cross_entropy, _softmax_cross_entropy_grad, "softmax_cross_entropy")
kl_divergence = Loss(_kl_divergence, _kl_divergence_grad, "kl_divergence")
js_divergence = Loss(_js_divergence, _js_divergence_grad, "js_divergence")
dice = Loss(_dice, _dice_grad, "dice")

CASES = (
    case("binary_cross_entropy", binary_cross_entropy, probabilities),
    case("sigmoid_binary_cross_entropy", sigmoid_binary_cross_entropy, logits_and_bits),
    case("softmax_cross_entropy-labels", softmax_cross_entropy, logits_and_labels),
    case("softmax_cross_entropy-soft", softmax_cross_entropy, distributions),
    case("softmax_cross_entropy-smoothed", softmax_cross_entropy.partial(label_smoothing=0.1),
         logits_and_labels),
    case("softmax_cross_entropy-sequence-weighted", softmax_cross_entropy, sequence_logits_and_labels,
         weighted=True),
    case("kl_divergence", kl_divergence, log_distributions),
    case("js_divergence", js_divergence, distributions),
    case("focal", focal, logits_and_bits),
    case("focal-gamma0.5-no-alpha", focal.partial(gamma=0.5, alpha=None), logits_and_bits),
    case("focal-weighted", focal, logits_and_bits, weighted=True),
    case("dice", dice, probabilities),
    case("dice-weighted", dice, probabilities, weighted=True),
)
