"""Reversible residual couplings (Gomez et al. 2017, RevNet): the inputs can be computed from the
outputs, so the backward pass recomputes them instead of keeping every block's activations."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case
from .combinators import _child_keys, _named_calls


def _halves(x):
    c = x.shape[-1] // 2
    return x[..., :c], x[..., c:]


def _recompute(pair, params, state, keys, train, y1, y2):
    """The coupling's inputs from its outputs, x2 = y2 − G(y1), x1 = y1 − F(x2), with the caches
    of G and F from that recomputation (their forward run again, in the forward's mode and keys)."""
    (f, g), (pf, pg), (sf, sg), (kf, kg) = pair, params, state, keys
    g_out, _, g_cache = g.forward(pg, sg, y1, key=kg, train=train)
    x2 = y2 - g_out
    f_out, _, f_cache = f.forward(pf, sf, x2, key=kf, train=train)
    return y1 - f_out, x2, f_cache, g_cache


def Reversible(f: Layer, g: Layer, *more: Layer, name: str = "reversible") -> Layer:
    """A stack of reversible couplings, one per pair (F_k, G_k) of the layers given, in order:
    x = [x1, x2] (halves of the last axis),  y1 = x1 + F(x2),  y2 = x2 + G(y1),  y = [y1, y2].

    F, G: any layers mapping (..., C) to (..., C). The cache holds only the last output (and the
    input state, key and mode): activation memory does not grow with the depth.
    Shapes: x (B, ..., 2C) -> y (B, ..., 2C); params, state: tuples (F_1, G_1, F_2, G_2, ...).
    Backward: pair by pair from the last, recompute x2 = y2 − G(y1), x1 = y1 − F(x2), then
        dpG, dy1_G = G.backward(dy2);  dy1 += dy1_G;  dpF, dx2_F = F.backward(dy1);
        dx1 = dy1,  dx2 = dy2 + dx2_F   (the pair below gets dy = [dx1, dx2]).
    """
    layers = (f, g, *more)
    if not all(isinstance(layer, Layer) for layer in layers) or len(layers) % 2:
        raise TypeError(f"{name}: expected Layers in pairs F_1, G_1, F_2, G_2, ..., got {len(layers)} "
                        f"arguments of types {[type(layer).__name__ for layer in layers]}")
    calls, pairs = _named_calls(name, layers), range(0, len(layers), 2)

    def init(key, in_shape):
        check_example_shape(name, in_shape, "(..., 2C) with an even last axis")
        if in_shape[-1] % 2:
            raise ValueError(f"{name}: expected in_shape (..., 2C) with an even last axis, got {tuple(in_shape)}")
        half = (*in_shape[:-1], in_shape[-1] // 2)
        shapes, params, state = zip(*(call("init", k, half) for call, k in
                                      zip(calls, jax.random.split(key, len(layers)))))
        wrong = next((tuple(s) for s in shapes if tuple(s) != half), None)
        if wrong is not None:
            raise ValueError(f"{name}: each F and G must keep the shape {half} of a half, got {wrong}")
        return tuple(in_shape), params, state

    def forward(params, state, x, *, key=None, train=False):
        check_input(name, x)
        if x.shape[-1] % 2:
            raise ValueError(f"{name}: expected x of shape (B, ..., 2C) with an even last axis, got {x.shape}")
        keys, new_state = _child_keys(key, len(layers)), list(state)
        x1, x2 = _halves(x)
        for i in pairs:
            f_out, new_state[i], _ = calls[i]("forward", params[i], state[i], x2, key=keys[i], train=train)
            y1 = x1 + f_out
            g_out, new_state[i + 1], _ = calls[i + 1]("forward", params[i + 1], state[i + 1], y1,
                                                      key=keys[i + 1], train=train)
            x1, x2 = y1, x2 + g_out                 # this pair's outputs are the next pair's inputs
        y = jnp.concatenate([x1, x2], axis=-1)
        # the mode is static: it lives in the cache's structure (a "train" entry or none), not in a value
        return y, tuple(new_state), {"y": y, "state": state, "key": key, **({"train": ()} if train else {})}

    def backward(params, cache, dy):
        train, keys = "train" in cache, _child_keys(cache["key"], len(layers))
        (y1, y2), (dy1, dy2) = _halves(cache["y"]), _halves(dy)
        grads = [None] * len(layers)
        for i in reversed(pairs):
            y1, y2, f_cache, g_cache = _recompute(layers[i:i + 2], params[i:i + 2], cache["state"][i:i + 2],
                                                  keys[i:i + 2], train, y1, y2)
            grads[i + 1], dy1_g = layers[i + 1].backward(params[i + 1], g_cache, dy2)
            dy1 = dy1 + dy1_g
            grads[i], dx2_f = layers[i].backward(params[i], f_cache, dy1)
            dy2 = dy2 + dx2_f
        return tuple(grads), jnp.concatenate([dy1, dy2], axis=-1)

    return Layer(init, forward, backward, name, layers)


def _mlp(width):
    from .activation import Tanh
    from .combinators import serial
    from .dense import Dense
    return serial(Dense(4), Tanh(), Dense(width))


def _normalised():
    from .combinators import serial
    from .dense import Dense
    from .norm import BatchNorm
    return serial(Dense(3), BatchNorm())


CASES = (
    Case("Reversible", lambda: Reversible(_mlp(3), _mlp(3)), (6,)),
    Case("Reversible-3-pairs", lambda: Reversible(_mlp(2), _mlp(2), _mlp(2), _mlp(2), _mlp(2), _mlp(2)), (2, 4)),
    Case("Reversible-batchnorm-train", lambda: Reversible(_normalised(), _mlp(3)), (6,), train=True, batch=5),
)
