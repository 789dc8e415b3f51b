"""Data augmentation as layers: RandomFlip, RandomTranslate (channels-last images).

Both act only in training (with a key) and are the identity in evaluation, like
Dropout. Each draws one transform per example and is linear in x, so its backward
is the transposed transform applied to dy: the same flip, or the opposite shift.
Put them first in a model: `serial(RandomFlip(), RandomTranslate(2), Conv2D(...), ...)`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core import Layer, check_example_shape, check_input, require_key
from ..gradcheck import Case


def _image_check(name, x):
    check_input(name, x)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected images of shape (B, H, W, C), got {tuple(x.shape)}")


def _image_init(name):
    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(H, W, C)", rank=3)
        return tuple(in_shape), (), ()
    return init


def RandomFlip(probability: float = 0.5, *, name: str = "RandomFlip") -> Layer:
    """Horizontal flip of each image with probability `probability`, in training:
    y[b, i, j] = x[b, i, W - 1 - j] if f[b] else x[b, i, j],  f[b] ~ Bernoulli(probability).

    Shapes: x (B, H, W, C) -> y (B, H, W, C); no params. Training needs `key`.
    Backward: the flip is its own transpose: dx[b] = flip(dy[b]) if f[b] else dy[b].
    """
    if not isinstance(probability, (int, float)) or not 0.0 <= probability <= 1.0:
        raise ValueError(f"{name}: probability must lie in [0, 1], got {probability!r}")

    def flip(v, flipped):
        return jnp.where(flipped[:, None, None, None], v[:, :, ::-1], v)

    def forward(params, state, x, *, key=None, train=False):
        del params
        _image_check(name, x)
        if not train:
            return x, state, None
        require_key(name, key)
        flipped = jax.random.bernoulli(key, probability, (x.shape[0],))
        return flip(x, flipped), state, flipped

    def backward(params, cache, dy):
        return (), dy if cache is None else flip(dy, cache)

    return Layer(_image_init(name), forward, backward, name)


def _shift_matrices(shifts, n, dtype):
    """S[b, i, h] = 1 where h = i - shifts[b] (zero rows where that falls outside 0..n-1)."""
    i = jnp.arange(n)
    return (i[None, None, :] == i[None, :, None] - shifts[:, None, None]).astype(dtype)


def RandomTranslate(max_shift: int = 2, *, name: str = "RandomTranslate") -> Layer:
    """Shift each image by whole pixels, zero-filled, in training:
    y[b, i, j] = x[b, i - s[b], j - t[b]] (0 outside), s, t ~ uniform {-max_shift..max_shift};
    as matrices y[b, :, :, c] = S_b x[b, :, :, c] T_b^T with one-hot shift matrices S_b, T_b.

    Shapes: x (B, H, W, C) -> y (B, H, W, C); no params. Training needs `key`.
    Backward: the transposed shift: dx[b, :, :, c] = S_b^T dy[b, :, :, c] T_b
    (dy moved back by (-s, -t); what was shifted out of the image gets no gradient).
    """
    if not isinstance(max_shift, int) or isinstance(max_shift, bool) or max_shift < 0:
        raise ValueError(f"{name}: max_shift must be a non-negative int, got {max_shift!r}")

    def forward(params, state, x, *, key=None, train=False):
        del params
        _image_check(name, x)
        if not train or max_shift == 0:
            return x, state, None
        require_key(name, key)
        s = jax.random.randint(key, (2, x.shape[0]), -max_shift, max_shift + 1)
        S, T = _shift_matrices(s[0], x.shape[1], x.dtype), _shift_matrices(s[1], x.shape[2], x.dtype)
        return jnp.einsum("bih,bhwc,bjw->bijc", S, x, T), state, (S, T)

    def backward(params, cache, dy):
        if cache is None:
            return (), dy
        S, T = cache
        return (), jnp.einsum("bih,bijc,bjw->bhwc", S, dy, T)

    return Layer(_image_init(name), forward, backward, name)


CASES = (
    Case("RandomFlip-eval", lambda: RandomFlip(), (3, 4, 2)),
    Case("RandomFlip-train", lambda: RandomFlip(), (3, 4, 2), train=True, batch=6),
    Case("RandomTranslate-eval", lambda: RandomTranslate(1), (3, 4, 2)),
    Case("RandomTranslate-train", lambda: RandomTranslate(2), (3, 4, 2), train=True, batch=6),
)
