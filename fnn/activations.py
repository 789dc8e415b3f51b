"""Activation functions, each a record beside its hand-derived backward (docs/design.md §3).

An activation is an `Activation` record: `relu(x)` is the value, `relu.grad(x, dy)` the
vector-Jacobian product dx = dy * f'(x), and `relu.backward(x, y, dy)` the same from
whichever of the input x and the output y the derivative reads (`relu.reads`), so a
layer caches only that one. Options fix a record again: `leaky_relu.partial(alpha=0.1)`.
All are pure `jnp` code (no autodiff), stable for large |x|, dtype-preserving.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

from .gradcheck import FunctionCase

Array = jax.Array

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_GELU_C = math.sqrt(2.0 / math.pi)     # tanh-form constant
_GELU_K = 0.044715


def fixed_options(name: str, function: Callable, options: tuple, new: dict) -> tuple:
    """`options` (sorted (key, value) pairs) updated by `new`, sorted again, so records
    with equal options compare and hash equal. Keys must be keyword parameters of
    `function` and values hashable (numbers, strings, None, tuples)."""
    parameters = inspect.signature(function).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for key, value in new.items():
        if not takes_any and key not in parameters:
            raise TypeError(f"{name}.partial: unknown option {key!r}; {name} takes "
                            f"{', '.join(p for p in parameters if p not in ('x', 'pred', 'target'))}")
        try:
            hash(value)
        except TypeError:
            raise TypeError(f"{name}.partial: option {key} must be hashable (a number, string, None "
                            f"or tuple), got {type(value).__name__}; pass arrays when calling") from None
    return tuple(sorted({**dict(options), **new}.items()))


@dataclasses.dataclass(frozen=True, repr=False)
class Activation:
    """An activation with its hand-derived derivative, as `Layer` pairs forward and backward.

        act(x, **kw)                -> y = forward_fn(x, **options, **kw)
        act.grad(x, dy, **kw)       -> dx = dy * f'(x)
        act.backward(x, y, dy, **kw) -> dx, reading only x or only y (as `reads` says; pass None for the other)
        act.partial(**kw)           -> the same activation with options fixed (an Activation)

    Build one from two functions: `Activation(f, backward_fn, "name", reads="x")`, with
    `backward_fn(x, y, dy, **options) -> dx`. Equal records compare and hash equal. A frozen
    dataclass rather than a NamedTuple: `jax.jit(relu)` needs a weak reference, and JAX
    must not take a record for a pytree of arrays.
    """
    forward_fn: Callable
    backward_fn: Callable
    name: str = "activation"
    reads: str = "x"
    options: tuple = ()

    def __post_init__(self):
        if getattr(self.forward_fn, "__doc__", None):     # inspect.getdoc(relu) gives the formula
            object.__setattr__(self, "__doc__", self.forward_fn.__doc__)

    def __call__(self, x: Array, **kwargs) -> Array:
        return self.forward_fn(x, **{**dict(self.options), **kwargs})

    def backward(self, x: Array | None, y: Array | None, dy: Array, **kwargs) -> Array:
        return self.backward_fn(x, y, dy, **{**dict(self.options), **kwargs})

    def grad(self, x: Array, dy: Array, **kwargs) -> Array:
        y = self(x, **kwargs) if self.reads == "y" else None
        return self.backward(x, y, dy, **kwargs)

    def partial(self, **kwargs) -> Activation:
        return dataclasses.replace(self, options=fixed_options(self.name, self.forward_fn, self.options, kwargs))

    def __repr__(self) -> str:
        return f"Activation({', '.join([self.name, *(f'{k}={v!r}' for k, v in self.options)])})"


def _sigmoid(x: Array) -> Array:
    """y = 1 / (1 + exp(-x)), evaluated through exp(-|x|) so it never overflows.

    Derivative: dy/dx = y (1 - y); the backward reads y only.
    """
    e = jnp.exp(-jnp.abs(x))
    return jnp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_backward(x: Array | None, y: Array, dy: Array) -> Array:
    return dy * y * (1 - y)


def _tanh(x: Array) -> Array:
    """y = tanh(x) = (e^x - e^-x) / (e^x + e^-x).

    Derivative: dy/dx = 1 - y^2; the backward reads y only.
    """
    return jnp.tanh(x)


def _tanh_backward(x: Array | None, y: Array, dy: Array) -> Array:
    return dy * (1 - y * y)


def _relu(x: Array) -> Array:
    """y = max(x, 0).

    Derivative: 1 for x > 0, else 0 (the subgradient 0 at x = 0, as jax.nn.relu).
    """
    return jnp.maximum(x, 0)


def _relu_backward(x: Array, y: Array | None, dy: Array) -> Array:
    return jnp.where(x > 0, dy, 0)


def _leaky_relu(x: Array, alpha: float = 0.01) -> Array:
    """y = x for x > 0, alpha x otherwise (alpha = slope of the negative side).

    Derivative: 1 for x > 0, alpha otherwise.
    """
    return jnp.where(x > 0, x, alpha * x)


def _leaky_relu_backward(x: Array, y: Array | None, dy: Array, alpha: float = 0.01) -> Array:
    return jnp.where(x > 0, dy, alpha * dy)


def _elu(x: Array, alpha: float = 1.0) -> Array:
    """y = x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2015).

    Derivative: 1 for x > 0, alpha exp(x) = y + alpha otherwise.
    """
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0)))


def _elu_backward(x: Array, y: Array | None, dy: Array, alpha: float = 1.0) -> Array:
    return jnp.where(x > 0, dy, dy * alpha * jnp.exp(jnp.minimum(x, 0)))


def _selu(x: Array) -> Array:
    """y = scale * elu(x, alpha), with alpha ~ 1.6733 and scale ~ 1.0507 (Klambauer et al. 2017).

    Derivative: scale for x > 0, scale alpha exp(x) otherwise.
    """
    return SELU_SCALE * _elu(x, SELU_ALPHA)


def _selu_backward(x: Array, y: Array | None, dy: Array) -> Array:
    return SELU_SCALE * _elu_backward(x, None, dy, SELU_ALPHA)


def _gelu(x: Array, approximate: bool = False) -> Array:
    """Exact: y = x Phi(x) = x erfc(-x / sqrt 2) / 2 (= x (1 + erf(x / sqrt 2)) / 2, accurate for x << 0).
    approximate=True: y = x (1 + tanh(u)) / 2, u = sqrt(2/pi) (x + 0.044715 x^3).

    Derivative, exact: Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi).
    Derivative, tanh form: (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2, t = tanh(u).
    """
    if approximate:
        return 0.5 * x * (1 + jnp.tanh(_GELU_C * (x + _GELU_K * x**3)))
    return 0.5 * x * erfc(-x / math.sqrt(2.0))


def _gelu_backward(x: Array, y: Array | None, dy: Array, approximate: bool = False) -> Array:
    if approximate:
        t = jnp.tanh(_GELU_C * (x + _GELU_K * x**3))
        du = _GELU_C * (1 + 3 * _GELU_K * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
    z = -x / math.sqrt(2.0)
    cdf = 0.5 * erfc(z)
    pdf = jnp.exp(-(z * z)) / math.sqrt(2 * math.pi)   # the exp(-z^2) XLA's erfc expansion forms too
    return dy * (cdf + x * pdf)


def _swish(x: Array, beta: float = 1.0) -> Array:
    """y = x sigmoid(beta x) (Ramachandran et al. 2017; beta = 1 is SiLU).

    Derivative: s (1 + beta x (1 - s)), s = sigmoid(beta x); and dy/dbeta = x^2 s (1 - s).
    """
    return x * _sigmoid(beta * x)


def _swish_backward(x: Array, y: Array | None, dy: Array, beta: float = 1.0) -> Array:
    s = _sigmoid(beta * x)
    return dy * s * (1 + beta * x * (1 - s))


def _swish_beta_grad(x: Array, dy: Array, beta: Array | float = 1.0) -> Array:
    """dL/dbeta of y = x sigmoid(beta x), summed over every element: sum(dy x^2 s (1 - s))."""
    s = _sigmoid(beta * x)
    return jnp.sum(dy * x * x * s * (1 - s))


def _softplus(x: Array) -> Array:
    """y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)) (the stable form).

    Derivative: sigmoid(x).
    """
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


def _softplus_backward(x: Array, y: Array | None, dy: Array) -> Array:
    return dy * _sigmoid(x)


def _mish(x: Array) -> Array:
    """y = x tanh(softplus(x)) (Misra 2019).

    Derivative: t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x)).
    """
    return x * jnp.tanh(_softplus(x))


def _mish_backward(x: Array, y: Array | None, dy: Array) -> Array:
    t = jnp.tanh(_softplus(x))
    return dy * (t + x * (1 - t * t) * _sigmoid(x))


def _softmax(x: Array, axis: int = -1) -> Array:
    """y_i = exp(x_i - m) / sum_j exp(x_j - m) along `axis`, m = max_j x_j (stable).

    Derivative (VJP): dx = y * (dy - sum(dy * y, axis)); the backward reads y only.
    """
    e = jnp.exp(x - jnp.max(x, axis=axis, keepdims=True))
    return e / jnp.sum(e, axis=axis, keepdims=True)


def _softmax_backward(x: Array | None, y: Array, dy: Array, axis: int = -1) -> Array:
    return y * (dy - jnp.sum(dy * y, axis=axis, keepdims=True))


def _log_softmax(x: Array, axis: int = -1) -> Array:
    """y_i = x_i - m - log sum_j exp(x_j - m) along `axis`, m = max_j x_j (stable).

    Derivative (VJP): dx = dy - exp(y) * sum(dy, axis); the backward reads y only.
    """
    shifted = x - jnp.max(x, axis=axis, keepdims=True)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def _log_softmax_backward(x: Array | None, y: Array, dy: Array, axis: int = -1) -> Array:
    return dy - jnp.exp(y) * jnp.sum(dy, axis=axis, keepdims=True)


sigmoid = Activation(_sigmoid, _sigmoid_backward, "sigmoid", reads="y")
tanh = Activation(_tanh, _tanh_backward, "tanh", reads="y")
relu = Activation(_relu, _relu_backward, "relu")
leaky_relu = Activation(_leaky_relu, _leaky_relu_backward, "leaky_relu")
elu = Activation(_elu, _elu_backward, "elu")
selu = Activation(_selu, _selu_backward, "selu")
gelu = Activation(_gelu, _gelu_backward, "gelu")
swish = Activation(_swish, _swish_backward, "swish")
silu = swish                                   # the same function under its other name
softplus = Activation(_softplus, _softplus_backward, "softplus")
mish = Activation(_mish, _mish_backward, "mish")
softmax = Activation(_softmax, _softmax_backward, "softmax", reads="y")
log_softmax = Activation(_log_softmax, _log_softmax_backward, "log_softmax", reads="y")
ACTIVATIONS = (sigmoid, tanh, relu, leaky_relu, elu, selu, gelu, swish, softplus, mish, softmax,
               log_softmax)


def _case(name: str, activation: Activation) -> FunctionCase:
    """A gradient-check row: float64 inputs of shape (3, 5), kept at least 0.2
    away from 0 so finite differences never straddle the kink of relu & co."""

    def make(key):
        x = 2 * jax.random.normal(key, (3, 5), jnp.float64)
        x = x + 0.2 * jnp.sign(x)
        return activation, lambda primals, dy: (activation.grad(primals[0], dy),), (x,)

    return FunctionCase(name, make)


CASES = (
    *(_case(a.name, a) for a in ACTIVATIONS if a.name not in ("leaky_relu", "elu")),
    _case("leaky_relu", leaky_relu.partial(alpha=0.1)),
    _case("elu", elu.partial(alpha=1.5)),
    _case("gelu-tanh", gelu.partial(approximate=True)),
    _case("swish-beta", swish.partial(beta=1.7)),
    _case("softmax-axis0", softmax.partial(axis=0)),
)

__all__ = ["ACTIVATIONS", "Activation", "elu", "gelu", "leaky_relu", "log_softmax", "mish", "relu", "selu",
           "sigmoid", "silu", "softmax", "softplus", "swish", "tanh"]
