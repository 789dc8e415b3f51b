"""Sequence classifiers over image rows: an (H, W, 1) image read as H steps of W pixels."""
from __future__ import annotations

from .. import layers as L
from ..core import Layer
from ..layers.combinators import serial

CELLS = {"lstm": L.LSTM, "gru": L.GRU, "rnn": L.SimpleRNN}


def row_classifier(cell: str = "lstm", num_classes: int = 10, *, hidden: int = 128,
                   image_shape: tuple[int, int, int] = (28, 28, 1)) -> Layer:
    """Reshape((H, W)) "rows" -> LSTM, GRU or SimpleRNN(hidden) "rnn" (the last state) -> Dense(num_classes)
    "head": (B, H, W, 1) -> (B, T = H, F = W) -> (B, hidden) -> (B, num_classes), hand-written BPTT."""
    if cell not in CELLS:
        raise ValueError(f"row_classifier: cell must be one of {sorted(CELLS)}, got {cell!r}")
    height, width, channels = image_shape
    if channels != 1:
        raise ValueError(f"row_classifier: expects grayscale images (H, W, 1), got image_shape {image_shape}")
    return serial(L.Reshape((height, width), name="rows"), CELLS[cell](hidden, name="rnn"),
                  L.Dense(num_classes, name="head"), name=cell)


def lstm(num_classes: int = 10, *, hidden: int = 128, image_shape: tuple[int, int, int] = (28, 28, 1)) -> Layer:
    """`row_classifier("lstm")`: Reshape((28, 28)) -> LSTM(hidden) -> Dense(num_classes)."""
    return row_classifier("lstm", num_classes, hidden=hidden, image_shape=image_shape)


def gru(num_classes: int = 10, *, hidden: int = 128, image_shape: tuple[int, int, int] = (28, 28, 1)) -> Layer:
    """`row_classifier("gru")`: Reshape((28, 28)) -> GRU(hidden) -> Dense(num_classes)."""
    return row_classifier("gru", num_classes, hidden=hidden, image_shape=image_shape)
