"""A small single-shot detector: convolutions down to the grid, then a 1x1 convolution head
whose 5 + K channels per cell `fnn.detection` reads (objectness, box offsets, class logits)."""
from __future__ import annotations

from .. import layers as L
from ..core import Layer
from ..layers.combinators import serial


def detector(num_classes: int = 10, *, width: int = 16, image_size: int = 64, grid: int = 8,
             batch_norm: bool = True) -> Layer:
    """(B, image_size, image_size, 1) -> (B, grid, grid, 5 + num_classes) head outputs.

    A block conv3x3-[BN]-ReLU-maxpool2 per halving (width, 2 width, 4 width, ... channels: 3 blocks
    for 64 -> 8), then conv3x3(4 width)-[BN]-ReLU, which widens the view to ~46 pixels, and
    Conv2D(5 + num_classes, 1) "head". Train it with `fnn.detection.detection_loss`.
    """
    halvings = (image_size // grid).bit_length() - 1
    if grid < 1 or image_size != grid * 2**halvings or halvings < 1:
        raise ValueError(f"detector: image_size / grid must be a power of 2 (>= 2), got image_size "
                         f"{image_size} and grid {grid}")
    if num_classes < 1 or width < 1:
        raise ValueError(f"detector: num_classes and width must be positive, got {num_classes} and {width}")

    def conv(features, name):
        norm = [L.BatchNorm(name=f"{name}_bn")] if batch_norm else []
        return [L.Conv2D(features, (3, 3), use_bias=not batch_norm, name=name), *norm, L.Relu()]
    body = []
    for i in range(halvings):
        body += [*conv(width * 2 ** min(i, 2), f"conv_{i + 1}"), L.MaxPool2D((2, 2))]
    return serial(*body, *conv(width * 4, f"conv_{halvings + 1}"),
                  L.Conv2D(5 + num_classes, (1, 1), name="head"), name="detector")
