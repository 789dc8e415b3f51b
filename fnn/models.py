"""Reference models used by the CLI, the examples and the benchmarks."""
from __future__ import annotations

from . import layers as L
from .core import Layer
from .initializers import he_uniform
from .layers.combinators import serial


def mlp(num_classes: int = 10, *, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.2,
        batch_norm: bool = True) -> Layer:
    """Flatten -> [Dense(h) -> [BatchNorm] -> ReLU -> Dropout] per hidden width -> Dense(num_classes)."""
    body = []
    for width in hidden:
        norm = [L.BatchNorm()] if batch_norm else []
        body += [L.Dense(width, W_init=he_uniform, use_bias=not batch_norm), *norm, L.Relu()]
        if dropout > 0:
            body.append(L.Dropout(dropout))
    return serial(L.Flatten(), *body, L.Dense(num_classes), name="mlp")


def cnn(num_classes: int = 10, *, batch_norm: bool = True, dropout: float = 0.3) -> Layer:
    """conv32-[BN]-ReLU-pool -> conv64-[BN]-ReLU-pool -> Dense128-ReLU-[Dropout] -> Dense(num_classes)."""
    def block(features):
        norm = [L.BatchNorm()] if batch_norm else []
        return [L.Conv2D(features, (3, 3), use_bias=not batch_norm), *norm, L.Relu(), L.MaxPool2D((2, 2))]
    head = [L.Flatten(), L.Dense(128, W_init=he_uniform), L.Relu()]
    if dropout > 0:
        head.append(L.Dropout(dropout))
    return serial(*block(32), *block(64), *head, L.Dense(num_classes), name="cnn")



MODELS = {"mlp": mlp, "cnn": cnn}
