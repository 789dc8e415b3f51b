"""Normalize: fixed per-channel standardisation of inputs (torchvision's transforms.Normalize), channels last."""
from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case

# the statistics of ImageNet's training images in RGB on [0, 1], as torchvision's pretrained models expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def Normalize(mean: Sequence[float], std: Sequence[float], *, name: str = "Normalize") -> Layer:
    """Per-channel standardisation with fixed statistics: y[..., c] = (x[..., c] - mean[c]) / std[c].

    Shapes: x (B, ..., C) -> y (B, ..., C);  mean, std: C floats (std > 0), constants, not params.
    Backward: dx = dy / std  (no params, so no dparams).
    """
    mean_np, std_np = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if mean_np.ndim != 1 or mean_np.shape != std_np.shape or mean_np.size == 0:
        raise ValueError(f"{name}: expected mean and std as two sequences of C floats, got {mean!r} and {std!r}")
    if not np.all(std_np > 0) or not np.all(np.isfinite(mean_np)):
        raise ValueError(f"{name}: expected finite mean and std > 0, got mean {mean!r}, std {std!r}")
    channels = mean_np.size

    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, f"(..., {channels})")
        if in_shape[-1] != channels:
            raise ValueError(f"{name}: expected in_shape (..., {channels}), got {tuple(in_shape)}")
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x)
        if x.shape[-1] != channels:
            raise ValueError(f"{name}: expected x of shape (B, ..., {channels}), got {tuple(x.shape)}")
        y = (x - jnp.asarray(mean_np, x.dtype)) / jnp.asarray(std_np, x.dtype)
        return y, state, None                                       # backward reads nothing

    def backward(params, cache, dy):
        return (), dy / jnp.asarray(std_np, dy.dtype)

    return Layer(init, forward, backward, name)


CASES = (
    Case("Normalize-imagenet", lambda: Normalize(IMAGENET_MEAN, IMAGENET_STD), (3, 4, 3)),
    Case("Normalize-features", lambda: Normalize((1.0, -2.0), (0.5, 3.0)), (2,)),
)
