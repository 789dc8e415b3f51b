"""Gating: the element-wise product join `Multiply`, the combinator `multiply` (y = a(x) * b(x))
and the squeeze-and-excitation block built from them (EfficientNet, MobileNetV3).

`Multiply` is a join as `Add` and `Concat` (combinators.py's `_join`): after `parallel`, it
takes a tuple of arrays that broadcast against each other, so a per-channel gate
(B, 1, 1, C) scales a whole feature map (B, H, W, C).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core import Layer
from ..gradcheck import Case
from .activation import Relu, Sigmoid, Swish
from .combinators import _join, parallel, serial
from .conv import Conv2D
from .dense import Reshape
from .dropout import inverted_dropout
from .pooling import GlobalAvgPool


def _unbroadcast(g, shape):
    """The adjoint of broadcasting an array of `shape` to g.shape: g summed over the axes it was
    broadcast along (leading axes it lacks, and its size-1 axes)."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _product(xs):
    y = xs[0]
    for xi in xs[1:]:
        y = y * xi
    return y


def Multiply(*, name: str = "Multiply") -> Layer:
    """Element-wise product of a tuple of inputs, broadcast as NumPy: y = x_1 * x_2 * ... * x_n.

    Shapes: tuple of (B, *s_i) whose s_i broadcast together (a gate (1, 1, C) against (H, W, C))
        -> (B, *broadcast(s_1, ..., s_n)); no params.
    Backward: dx_i = dy * prod_{j != i} x_j, summed over the axes along which x_i was broadcast.
    """
    def out_shape_of(shapes):
        try:
            return tuple(np.broadcast_shapes(*(tuple(s) for s in shapes)))
        except ValueError:
            raise ValueError(f"{name}: inputs must broadcast to one shape, got {shapes}") from None

    def split(xs, dy):
        return tuple(_unbroadcast(dy * _product(xs[:i] + xs[i + 1:]), xi.shape) if len(xs) > 1 else dy
                     for i, xi in enumerate(xs))

    return _join(name, _product, split, out_shape_of)


def Identity(*, name: str = "identity") -> Layer:
    """y = x (the ungated input of `multiply`).

    Shapes: x (B, *in_shape) -> y (B, *in_shape); no params.   Backward: dx = dy.
    """
    def init(key, in_shape):
        del key
        return in_shape, (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        return x, state, None

    def backward(params, cache, dy):
        return (), dy

    return Layer(init, forward, backward, name)


def multiply(a: Layer, b: Layer | None = None, *, name: str = "multiply") -> Layer:
    """Product of two branches on one input: y = a(x) * b(x), broadcast; b = None is the identity,
    so `multiply(gate)` is the gated input y = gate(x) * x.

    Shapes: x (B, *in_shape) -> (B, *broadcast(out_a, out_b));  params: ((a's, b's), ()).
    Backward: dy_a = unbroadcast(dy * b(x)), dy_b = unbroadcast(dy * a(x));
        dx = dx_a + dx_b from the branches' own backward (`parallel` then `Multiply`).
    """
    return serial(parallel(a, Identity() if b is None else b), Multiply(), name=name)


def squeeze_excitation(channels: int, squeeze_channels: int, *, activation: Callable[..., Layer] = Relu,
                       name: str = "squeeze_excitation") -> Layer:
    """Squeeze-and-excitation (Hu et al. 2018), as torchvision's SqueezeExcitation:
    y = x * sigmoid(fc2(act(fc1(mean_{h,w} x)))), fc1, fc2 1x1 convolutions with bias.

    Shapes: x (B, H, W, channels) -> y (B, H, W, channels);  the gate is (B, 1, 1, channels);
        fc1 W (1, 1, channels, squeeze_channels), fc2 W (1, 1, squeeze_channels, channels).
    Children: multiply(scale) with scale = serial(avgpool, Reshape, fc1, activation, fc2,
        scale_activation): torchvision's names. Backward: `multiply`'s, through the gate's layers.
    """
    for arg, value in (("channels", channels), ("squeeze_channels", squeeze_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    scale = serial(GlobalAvgPool(name="avgpool"), Reshape((1, 1, channels), name="keepdims"),
                   Conv2D(squeeze_channels, 1, name="fc1"), activation(name="activation"),
                   Conv2D(channels, 1, name="fc2"), Sigmoid(name="scale_activation"), name="scale")
    return multiply(scale, name=name)


def StochasticDepth(rate: float, *, name: str = "stochastic_depth") -> Layer:
    """Stochastic depth (Huang et al. 2016; torchvision's mode "row"): in training y = x m_b / (1 - rate),
    one m_b ~ Bernoulli(1 - rate) per example, so a residual branch is kept or dropped whole;
    y = x in evaluation. `rate` in [0, 1) is the probability of DROPPING the branch.

    Shapes: x (B, ...) -> y (B, ...); no params. Training needs `key`.
    Backward: dx = dy m_b / (1 - rate) (the same m_b), or dx = dy in evaluation.
    """
    return inverted_dropout(rate, lambda shape: (shape[0],) + (1,) * (len(shape) - 1), name=name)


def _gate():
    return serial(GlobalAvgPool(), Reshape((1, 1, 3)), Sigmoid())


CASES = (
    Case("Multiply-broadcast", lambda: serial(parallel(Identity(), _gate()), Multiply()), (4, 5, 3)),
    Case("Multiply-three", lambda: serial(parallel(Identity(), Sigmoid(), _gate()), Multiply()), (4, 5, 3)),
    Case("multiply-two-branches", lambda: multiply(Conv2D(3, 3), _gate()), (4, 5, 3)),
    Case("StochasticDepth-train", lambda: StochasticDepth(0.5), (3, 2), train=True, batch=6),
    Case("squeeze_excitation", lambda: squeeze_excitation(3, 2, activation=Swish), (4, 5, 3)),
)
