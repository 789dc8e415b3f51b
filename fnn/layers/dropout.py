"""Dropout (inverted)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, check_input, require_key
from ..gradcheck import Case


def Dropout(rate: float, *, name: str = "Dropout") -> Layer:
    """Inverted dropout: y = x * m / (1 - rate), m ~ Bernoulli(1 - rate), in training;
    y = x in evaluation. `rate` in [0, 1) is the probability of DROPPING a unit.

    Shapes: x (B, *in_shape) -> y (B, *in_shape); no params. Training needs `key`.
    Backward: dx = dy * m / (1 - rate) (the same mask), or dx = dy in evaluation.
    """
    if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{name}: rate (the probability of dropping) must lie in [0, 1), got {rate!r}")

    def init(key, in_shape):
        del key
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params
        check_input(name, x)
        if not train or rate == 0.0:
            return x, state, None
        require_key(name, key)
        scale = jnp.where(jax.random.bernoulli(key, 1.0 - rate, x.shape), 1.0 / (1.0 - rate), 0.0)
        scale = scale.astype(x.dtype)
        return x * scale, state, scale

    def backward(params, cache, dy):
        return (), dy if cache is None else dy * cache

    return Layer(init, forward, backward, name)


CASES = (
    Case("Dropout-eval", lambda: Dropout(0.5), (6,)),
    Case("Dropout-train", lambda: Dropout(0.3), (6,), train=True),
)
