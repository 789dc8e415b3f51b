"""Activation layers: one shared factory over the `fnn.activations` records, and PRelu."""
from __future__ import annotations

import jax.numpy as jnp

from .. import activations as A
from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case


def _activation(name: str, activation: A.Activation, *, axis: int | None = None, **options) -> Layer:
    """A parameter-free layer y = activation(x, **options) whose backward is
    dx = activation.backward(x, y, dy). The cache holds only the one of x and y
    the derivative reads (`activation.reads`). `axis` (for softmax) is an axis of
    the batch x and may not be the batch axis 0."""
    if "alpha" in options and (isinstance(options["alpha"], bool)
                               or not isinstance(options["alpha"], (int, float))):
        raise ValueError(f"{name}: alpha must be a real number, got {options['alpha']!r}")
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ValueError(f"{name}: axis must be an int naming a non-batch axis of x, got {axis!r}")
        options["axis"] = axis
    activation = activation.partial(**options)
    reads_x = activation.reads == "x"

    def init(key, in_shape):
        del key
        if axis is not None and not -len(in_shape) <= axis <= len(in_shape):
            shape = ", ".join(["B", *map(str, in_shape)])
            raise ValueError(f"{name}: axis {axis} is out of range for x of shape ({shape})")
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x, min_ndim=0 if axis is None else 1)
        if axis is not None and (axis >= x.ndim or axis < -(x.ndim - 1)):
            raise ValueError(f"{name}: axis {axis} is not a non-batch axis of x of shape {tuple(x.shape)}")
        y = activation(x)
        return y, state, x if reads_x else y

    def backward(params, cache, dy):
        x, y = (cache, None) if reads_x else (None, cache)
        return (), activation.backward(x, y, dy)

    return Layer(init, forward, backward, name)


def Sigmoid(*, name: str = "Sigmoid") -> Layer:
    """Logistic sigmoid, elementwise: y = 1 / (1 + exp(-x)).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy * y * (1 - y).
    """
    return _activation(name, A.sigmoid)


def Tanh(*, name: str = "Tanh") -> Layer:
    """Hyperbolic tangent, elementwise: y = tanh(x).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy * (1 - y^2).
    """
    return _activation(name, A.tanh)


def Relu(*, name: str = "Relu") -> Layer:
    """Rectified linear unit, elementwise: y = max(x, 0).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy * [x > 0].
    """
    return _activation(name, A.relu)


def LeakyRelu(alpha: float = 0.01, *, name: str = "LeakyRelu") -> Layer:
    """Leaky ReLU, elementwise: y = x if x > 0 else alpha x (alpha = negative-side slope).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy if x > 0 else alpha dy.
    """
    return _activation(name, A.leaky_relu, alpha=alpha)


def Elu(alpha: float = 1.0, *, name: str = "Elu") -> Layer:
    """Exponential linear unit, elementwise: y = x if x > 0 else alpha (exp(x) - 1).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy if x > 0 else dy alpha exp(x).
    """
    return _activation(name, A.elu, alpha=alpha)


def Selu(*, name: str = "Selu") -> Layer:
    """Scaled ELU, elementwise: y = scale * elu(x, alpha), alpha ~ 1.6733, scale ~ 1.0507.

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = scale dy if x > 0 else scale dy alpha exp(x).
    """
    return _activation(name, A.selu)


def Gelu(approximate: bool = False, *, name: str = "Gelu") -> Layer:
    """Gaussian error linear unit, elementwise: y = x Phi(x) (tanh form when approximate).

    Exact: Phi(x) = (1 + erf(x / sqrt 2)) / 2; approximate: (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2.
    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy * (Phi(x) + x phi(x)) exactly, or the tanh form's derivative (see fnn.activations.gelu).
    """
    return _activation(name, A.gelu, approximate=approximate)


def Swish(beta: float = 1.0, learnable: bool = False, *, name: str = "Swish") -> Layer:
    """Swish, elementwise: y = x sigmoid(beta x) (beta = 1: SiLU), beta fixed or learned.

    Shapes: x (B, ...) -> y (B, ...); learnable: params {"beta": ()} initialised to `beta`.
    Backward: dx = dy * s (1 + beta x (1 - s)), s = sigmoid(beta x);
        learnable: dbeta = sum(dy * x^2 s (1 - s)) over every element.
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not isinstance(learnable, bool):
        raise ValueError(f"{name}: expected a real beta and a bool learnable, got beta={beta!r}, "
                         f"learnable={learnable!r}")
    if not learnable:
        return _activation(name, A.swish, beta=float(beta))

    def init(key, in_shape):
        del key
        return tuple(in_shape), {"beta": jnp.asarray(beta, jnp.float32)}, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        check_input(name, x, min_ndim=0)
        return A.swish(x, beta=params["beta"]), state, x

    def backward(params, cache, dy):
        x, beta = cache, params["beta"]
        return {"beta": A._swish_beta_grad(x, dy, beta)}, A.swish.backward(x, None, dy, beta=beta)

    return Layer(init, forward, backward, name)


def Mish(*, name: str = "Mish") -> Layer:
    """Mish, elementwise: y = x tanh(softplus(x)).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy * (t + x (1 - t^2) sigmoid(x)), t = tanh(softplus(x)).
    """
    return _activation(name, A.mish)


def Softplus(*, name: str = "Softplus") -> Layer:
    """Softplus, elementwise: y = log(1 + exp(x)).

    Shapes: x (B, ...) -> y (B, ...); no params.
    Backward: dx = dy * sigmoid(x).
    """
    return _activation(name, A.softplus)


def Softmax(axis: int = -1, *, name: str = "Softmax") -> Layer:
    """Softmax along `axis` of x (not the batch axis 0): y_i = exp(x_i) / sum_j exp(x_j).

    Shapes: x (B, ..., C) -> y (B, ..., C), each slice along `axis` sums to 1; no params.
    Backward: dx = y * (dy - sum(dy * y, axis)).
    """
    return _activation(name, A.softmax, axis=axis)


def LogSoftmax(axis: int = -1, *, name: str = "LogSoftmax") -> Layer:
    """Log-softmax along `axis` of x (not the batch axis 0): y_i = x_i - log sum_j exp(x_j).

    Shapes: x (B, ..., C) -> y (B, ..., C); no params.
    Backward: dx = dy - exp(y) * sum(dy, axis).
    """
    return _activation(name, A.log_softmax, axis=axis)


def PRelu(*, name: str = "PRelu") -> Layer:
    """Parametric ReLU with a learned slope per last-axis channel: y = x if x > 0 else alpha x.

    Shapes: x (B, ..., C) -> y (B, ..., C); alpha (C,), initialised to 0.25 (He et al. 2015).
    Backward: (sums run over all leading axes)
        dalpha = sum(dy * min(x, 0))      dx = dy if x > 0 else alpha dy
    """

    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(..., C) ending in a channel axis")
        return tuple(in_shape), {"alpha": jnp.full((in_shape[-1],), 0.25, jnp.float32)}, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        check_input(name, x)
        channels = params["alpha"].shape[0]
        if x.shape[-1] != channels:
            raise ValueError(f"{name}: expected x of shape (B, ..., {channels}), got {tuple(x.shape)}")
        return jnp.where(x > 0, x, params["alpha"] * x), state, x

    def backward(params, cache, dy):
        x = cache
        negative_part = jnp.minimum(x, 0).reshape(-1, x.shape[-1])
        dalpha = jnp.sum(dy.reshape(-1, x.shape[-1]) * negative_part, axis=0)
        return {"alpha": dalpha}, jnp.where(x > 0, dy, params["alpha"] * dy)

    return Layer(init, forward, backward, name)


CASES = (                           # one example shape (5,) where possible: shared compilations
    Case("Sigmoid", Sigmoid, (5,)),
    Case("Tanh", Tanh, (5,)),
    Case("Relu", Relu, (5,)),
    Case("LeakyRelu", lambda: LeakyRelu(0.1), (5,)),
    Case("Elu", lambda: Elu(1.5), (5,)),
    Case("Selu", Selu, (5,)),
    Case("Gelu", Gelu, (5,)),
    Case("Gelu-tanh", lambda: Gelu(approximate=True), (5,)),
    Case("Swish", Swish, (5,)),
    Case("Swish-beta", lambda: Swish(0.5), (5,)),
    Case("Swish-learnable", lambda: Swish(1.5, learnable=True), (5,)),
    Case("Mish", Mish, (5,)),
    Case("Softplus", Softplus, (5,)),
    Case("Softmax", Softmax, (5,)),
    Case("Softmax-axis1", lambda: Softmax(axis=1), (2, 5)),
    Case("LogSoftmax", LogSoftmax, (5,)),
    Case("PRelu", PRelu, (2, 5)),
)
