"""Activation functions, each beside its hand-derived backward (DESIGN.md §3).

Every activation `name(x, ...)` has `name_backward(x, y, dy, ...) -> dx`, the
vector-Jacobian product: it gets the input `x`, the output `y = name(x, ...)`
and the cotangent `dy`, and takes the same keyword arguments as the forward.
Backwards that reuse `y` (sigmoid, tanh, softmax, log_softmax) document it,
so a layer can cache `y` alone; `READS[name]` says which of `x`, `y` each reads.
All are pure `jnp` code (no autodiff), stable for large |x|, dtype-preserving.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from .core import FunctionCase

Array = jax.Array

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_GELU_C = math.sqrt(2.0 / math.pi)     # tanh-form constant
_GELU_K = 0.044715


def sigmoid(x: Array) -> Array:
    """y = 1 / (1 + exp(-x)), evaluated through exp(-|x|) so it never overflows.

    Derivative: dy/dx = y (1 - y).
    """
    e = jnp.exp(-jnp.abs(x))
    return jnp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(x: Array | None, y: Array, dy: Array) -> Array:
    """dx = dy * y * (1 - y); reads y only."""
    return dy * y * (1 - y)


def tanh(x: Array) -> Array:
    """y = tanh(x) = (e^x - e^-x) / (e^x + e^-x).

    Derivative: dy/dx = 1 - y^2.
    """
    return jnp.tanh(x)


def tanh_backward(x: Array | None, y: Array, dy: Array) -> Array:
    """dx = dy * (1 - y^2); reads y only."""
    return dy * (1 - y * y)


def relu(x: Array) -> Array:
    """y = max(x, 0).

    Derivative: 1 for x > 0, else 0 (the subgradient 0 at x = 0, as jax.nn.relu).
    """
    return jnp.maximum(x, 0)


def relu_backward(x: Array, y: Array | None, dy: Array) -> Array:
    """dx = dy * [x > 0]; reads x only."""
    return jnp.where(x > 0, dy, 0)


def leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """y = x for x > 0, alpha x otherwise (alpha = slope of the negative side).

    Derivative: 1 for x > 0, alpha otherwise.
    """
    return jnp.where(x > 0, x, alpha * x)


def leaky_relu_backward(x: Array, y: Array | None, dy: Array, alpha: float = 0.01) -> Array:
    """dx = dy for x > 0, alpha dy otherwise; reads x only."""
    return jnp.where(x > 0, dy, alpha * dy)


def elu(x: Array, alpha: float = 1.0) -> Array:
    """y = x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2015).

    Derivative: 1 for x > 0, alpha exp(x) = y + alpha otherwise.
    """
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def elu_backward(x: Array, y: Array | None, dy: Array, alpha: float = 1.0) -> Array:
    """dx = dy for x > 0, dy alpha exp(x) otherwise; reads x only."""
    return jnp.where(x > 0, dy, dy * alpha * jnp.exp(jnp.minimum(x, 0)))


def selu(x: Array) -> Array:
    """y = scale * elu(x, alpha), with alpha ~ 1.6733 and scale ~ 1.0507 (Klambauer et al. 2017).

    Derivative: scale for x > 0, scale alpha exp(x) otherwise.
    """
    return SELU_SCALE * elu(x, SELU_ALPHA)


def selu_backward(x: Array, y: Array | None, dy: Array) -> Array:
    """dx = scale * elu_backward(x, dy, alpha); reads x only."""
    return SELU_SCALE * elu_backward(x, None, dy, SELU_ALPHA)


def gelu(x: Array, approximate: bool = False) -> Array:
    """Exact: y = x Phi(x) = x erfc(-x / sqrt 2) / 2 (= x (1 + erf(x / sqrt 2)) / 2, accurate for x << 0).
    approximate=True: y = x (1 + tanh(u)) / 2, u = sqrt(2/pi) (x + 0.044715 x^3).

    Derivative, exact: Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi).
    Derivative, tanh form: (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2, t = tanh(u).
    """
    if approximate:
        return 0.5 * x * (1 + jnp.tanh(_GELU_C * (x + _GELU_K * x**3)))
    return 0.5 * x * erfc(-x / math.sqrt(2.0))


def gelu_backward(x: Array, y: Array | None, dy: Array, approximate: bool = False) -> Array:
    """dx = dy * gelu'(x) (see `gelu`); reads x only."""
    if approximate:
        t = jnp.tanh(_GELU_C * (x + _GELU_K * x**3))
        du = _GELU_C * (1 + 3 * _GELU_K * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
    cdf = 0.5 * erfc(-x / math.sqrt(2.0))
    pdf = jnp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return dy * (cdf + x * pdf)


def swish(x: Array) -> Array:
    """y = x sigmoid(x) (also called SiLU; Ramachandran et al. 2017).

    Derivative: s (1 + x (1 - s)), s = sigmoid(x).
    """
    return x * sigmoid(x)


def swish_backward(x: Array, y: Array | None, dy: Array) -> Array:
    """dx = dy * s (1 + x (1 - s)), s = sigmoid(x); reads x only."""
    s = sigmoid(x)
    return dy * s * (1 + x * (1 - s))


silu = swish
silu_backward = swish_backward


def softplus(x: Array) -> Array:
    """y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)) (the stable form).

    Derivative: sigmoid(x).
    """
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


def softplus_backward(x: Array, y: Array | None, dy: Array) -> Array:
    """dx = dy * sigmoid(x); reads x only."""
    return dy * sigmoid(x)


def mish(x: Array) -> Array:
    """y = x tanh(softplus(x)) (Misra 2019).

    Derivative: t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x)).
    """
    return x * jnp.tanh(softplus(x))


def mish_backward(x: Array, y: Array | None, dy: Array) -> Array:
    """dx = dy * (t + x (1 - t^2) sigmoid(x)), t = tanh(softplus(x)); reads x only."""
    t = jnp.tanh(softplus(x))
    return dy * (t + x * (1 - t * t) * sigmoid(x))


def softmax(x: Array, axis: int = -1) -> Array:
    """y_i = exp(x_i - m) / sum_j exp(x_j - m) along `axis`, m = max_j x_j (stable).

    Derivative (VJP): dx = y * (dy - sum(dy * y, axis)).
    """
    e = jnp.exp(x - jnp.max(x, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def softmax_backward(x: Array | None, y: Array, dy: Array, axis: int = -1) -> Array:
    """dx = y * (dy - sum(dy * y, axis)); reads y only."""
    return y * (dy - jnp.sum(dy * y, axis=axis, keepdims=True))


def log_softmax(x: Array, axis: int = -1) -> Array:
    """y_i = x_i - m - log sum_j exp(x_j - m) along `axis`, m = max_j x_j (stable).

    Derivative (VJP): dx = dy - exp(y) * sum(dy, axis).
    """
    shifted = x - jnp.max(x, axis=axis, keepdims=True)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def log_softmax_backward(x: Array | None, y: Array, dy: Array, axis: int = -1) -> Array:
    """dx = dy - exp(y) * sum(dy, axis); reads y only."""
    return dy - jnp.exp(y) * jnp.sum(dy, axis=axis, keepdims=True)


# Which of (x, y) each backward reads, so a layer caches only that.
READS = {"sigmoid": "y", "tanh": "y", "softmax": "y", "log_softmax": "y", "relu": "x",
         "leaky_relu": "x", "elu": "x", "selu": "x", "gelu": "x", "swish": "x", "mish": "x",
         "softplus": "x"}


def _case(name: str, forward: Callable, backward: Callable, **options) -> FunctionCase:
    """A gradient-check row: float64 inputs of shape (3, 5), kept at least 0.2
    away from 0 so finite differences never straddle the kink of relu & co."""

    def make(key):
        x = 2 * jax.random.normal(key, (3, 5), jnp.float64)
        x = x + 0.2 * jnp.sign(x)

        def f(x):
            return forward(x, **options)

        def hand_vjp(primals, dy):
            (x,) = primals
            return (backward(x, f(x), dy, **options),)

        return f, hand_vjp, (x,)

    return FunctionCase(name, make)


CASES = (
    _case("sigmoid", sigmoid, sigmoid_backward),
    _case("tanh", tanh, tanh_backward),
    _case("relu", relu, relu_backward),
    _case("leaky_relu", leaky_relu, leaky_relu_backward, alpha=0.1),
    _case("elu", elu, elu_backward, alpha=1.5),
    _case("selu", selu, selu_backward),
    _case("gelu", gelu, gelu_backward),
    _case("gelu-tanh", gelu, gelu_backward, approximate=True),
    _case("swish", swish, swish_backward),
    _case("mish", mish, mish_backward),
    _case("softplus", softplus, softplus_backward),
    _case("softmax", softmax, softmax_backward),
    _case("softmax-axis0", softmax, softmax_backward, axis=0),
    _case("log_softmax", log_softmax, log_softmax_backward),
)
