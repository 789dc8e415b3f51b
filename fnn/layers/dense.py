"""Dense and shape layers: Dense, Flatten, Reshape."""
from __future__ import annotations

import math

import jax.numpy as jnp

from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case
from ..initializers import Initializer, glorot_uniform, zeros


def Dense(out_dim: int, *, use_bias: bool = True, W_init: Initializer = glorot_uniform,
          b_init: Initializer = zeros, name: str = "Dense") -> Layer:
    """Affine map on the last axis: y = x @ W + b.

    Shapes: (B = batch, ... = any extra leading axes)
        x (B, ..., d_in) -> y (B, ..., out_dim);  W (d_in, out_dim), b (out_dim,)
    Backward: (given dy = dL/dy, summing over all leading axes)
        dW = x^T dy      db = sum(dy)      dx = dy W^T
    """
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
        raise ValueError(f"{name}: out_dim must be a positive int, got {out_dim!r}")

    def init(key, in_shape):
        check_example_shape(name, in_shape, "(..., d_in) ending in a feature axis")
        params = {"W": W_init(key, (in_shape[-1], out_dim), jnp.float32)}
        if use_bias:
            params["b"] = b_init(key, (out_dim,), jnp.float32)
        return (*in_shape[:-1], out_dim), params, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train                          # deterministic and stateless
        check_input(name, x)
        d_in = params["W"].shape[0]
        if x.shape[-1] != d_in:                 # static shapes: free under jit
            raise ValueError(f"{name}: expected x of shape (B, ..., {d_in}), got {tuple(x.shape)}")
        y = x @ params["W"]
        if use_bias:
            y = y + params["b"]
        return y, state, x                      # cache: exactly what backward reads

    def backward(params, cache, dy):
        x = cache
        x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
        dparams = {"W": x2.T @ dy2}
        if use_bias:
            dparams["b"] = dy2.sum(axis=0)
        return dparams, dy @ params["W"].T

    return Layer(init, forward, backward, name)


def Reshape(shape: tuple, *, name: str = "Reshape") -> Layer:
    """Reshape each example: y = x.reshape(B, *shape); one entry of `shape` may be -1.

    Shapes: x (B, *in_shape) -> y (B, *shape), same number of entries; no params.
    Backward: dx = dy.reshape(x.shape).
    """
    shape = tuple(shape)
    if sum(d == -1 for d in shape) > 1 or any(d == 0 or d < -1 for d in shape):
        raise ValueError(f"{name}: shape must have positive entries and at most one -1, got {shape}")

    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(d_1, ..., d_k)", min_rank=0)
        size, known = math.prod(in_shape), math.prod(d for d in shape if d != -1)
        if (-1 in shape and size % known) or (-1 not in shape and size != known):
            raise ValueError(f"{name}: cannot reshape one example of shape {tuple(in_shape)} to {shape}")
        return tuple(size // known if d == -1 else d for d in shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x)
        return x.reshape(x.shape[0], *shape), state, x    # backward reads its static shape

    def backward(params, cache, dy):
        return (), dy.reshape(cache.shape)

    return Layer(init, forward, backward, name)


def Flatten(*, name: str = "Flatten") -> Layer:
    """Flatten each example: y = x.reshape(B, -1).

    Shapes: x (B, d_1, ..., d_k) -> y (B, d_1 * ... * d_k); no params.
    Backward: dx = dy.reshape(x.shape).
    """
    return Reshape((-1,), name=name)


CASES = (
    Case("Dense", lambda: Dense(4), (5,)),
    Case("Dense-3d", lambda: Dense(3, use_bias=False), (2, 5)),
    Case("Flatten", Flatten, (2, 3, 2)),
    Case("Reshape", lambda: Reshape((3, -1)), (6, 2)),
)
