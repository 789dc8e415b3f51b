"""Dropout (inverted)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..core import Layer, check_input, require_key
from ..gradcheck import Case


def _mix32(h):
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 that mixes every input bit into every output bit."""
    h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
    h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """A boolean mask, True with probability 1 - rate (to 2^-32), drawn from `key`.

    Two 32-bit seeds come from `key` by JAX's threefry; element i's 32 bits are
    mix32(mix32(i ^ s0) + s1), a counter-based hash (as Philox-style generators are): the
    same key gives the same mask, and it is ~25x cheaper on CPU than threefry per element,
    which made dropout a fifth of a transformer's training step.

    Shapes: key, shape -> bool array of `shape` (fewer than 2^32 elements).
    Backward: none (a mask of the key, not a function of any input).
    """
    size = math.prod(shape)
    if size >= 2 ** 32:
        raise ValueError(f"keep_mask: expected fewer than 2**32 elements, got shape {shape}")
    seeds = jax.random.bits(key, (2,), jnp.uint32)
    bits = _mix32(_mix32(jax.lax.iota(jnp.uint32, size) ^ seeds[0]) + seeds[1])
    return (bits >= jnp.uint32(min(round(rate * 2.0 ** 32), 2 ** 32 - 1))).reshape(shape)


def Dropout(rate: float, *, name: str = "Dropout") -> Layer:
    """Inverted dropout: y = x * m / (1 - rate), m ~ Bernoulli(1 - rate), in training;
    y = x in evaluation. `rate` in [0, 1) is the probability of DROPPING a unit.
    The mask comes from `keep_mask` (threefry seeds, a counter hash per element).

    Shapes: x (B, *in_shape) -> y (B, *in_shape); no params. Training needs `key`.
    Backward: dx = dy * m / (1 - rate) (the same mask), or dx = dy in evaluation.
    """
    return inverted_dropout(rate, lambda shape: shape, name=name)


def inverted_dropout(rate: float, mask_shape, *, name: str) -> Layer:
    """y = x * m / (1 - rate) in training, m ~ Bernoulli(1 - rate) of shape `mask_shape(x.shape)`
    broadcast over x (Dropout: x's shape; StochasticDepth: (B, 1, ..., 1)); y = x in evaluation.
    Backward: dx = dy * m / (1 - rate), the same m; dx = dy in evaluation."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
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
        scale = jnp.where(keep_mask(key, tuple(mask_shape(x.shape)), rate), 1.0 / (1.0 - rate), 0.0)
        scale = scale.astype(x.dtype)
        return x * scale, state, scale

    def backward(params, cache, dy):
        return (), dy if cache is None else dy * cache

    return Layer(init, forward, backward, name)


CASES = (
    Case("Dropout-eval", lambda: Dropout(0.5), (6,)),
    Case("Dropout-train", lambda: Dropout(0.3), (6,), train=True),
)
