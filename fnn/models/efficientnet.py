"""EfficientNet-B0 (Tan & Le 2019) in torchvision's layout, NHWC, 5,288,548 parameters.

Paths follow torchvision's module names ("efficientnet_b0/features/2/0/block/1/0" is
"features.2.0.block.1.0"), except inside a squeeze-and-excitation block, whose gate sits under
"parallel/scale" (`fnn.layers.squeeze_excitation`); `fnn.interop` converts by these names.
As torchvision: BatchNorm eps 1e-5 (momentum 0.1 in PyTorch's sense, 0.9 in fnn's), SiLU,
convolutions padded by (k - 1) // 2, stochastic depth 0.2 * block / 16 on the residual blocks
(identity in evaluation), classifier Dropout(0.2) -> Linear.

    model = fnn.models.efficientnet_b0()          # (B, 224, 224, 3) -> (B, 1000) logits
"""
from __future__ import annotations

from .. import layers as L
from ..core import Layer
from ..layers.combinators import residual, serial
from ..layers.gating import StochasticDepth, squeeze_excitation

# torchvision's _efficientnet_conf("efficientnet_b0"): (expand_ratio, kernel, stride, in, out, layers)
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: the nearest multiple of `divisor` (at least `divisor`),
    rounded up a step when rounding would lose more than 10% of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_norm_activation(out_channels: int, kernel: int, stride: int = 1, *, groups: int = 1,
                         activation: bool = True, name: str = "0") -> Layer:
    """torchvision's Conv2dNormActivation: Conv2D (padding (k - 1) // 2, no bias) "0" -> BatchNorm
    (eps 1e-5) "1" -> [SiLU "2"]: (B, H, W, C) -> (B, H / stride, W / stride, out_channels)."""
    layers = [L.Conv2D(out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, use_bias=False, name="0"),
              L.BatchNorm(momentum=0.9, eps=1e-5, name="1")]
    return serial(*layers, *([L.Swish(name="2")] if activation else []), name=name)


def mbconv(in_channels: int, out_channels: int, expand_ratio: int, kernel: int, stride: int,
           stochastic_depth_prob: float = 0.0, *, name: str = "0") -> Layer:
    """torchvision's MBConv: block = [expand 1x1-BN-SiLU] -> depthwise kxk(stride)-BN-SiLU ->
    squeeze-excitation (squeeze = max(1, in_channels // 4), SiLU) -> project 1x1-BN; plus the input,
    through StochasticDepth, when stride 1 keeps the shape. (B, H, W, in) -> (B, H/s, W/s, out)."""
    expanded = make_divisible(in_channels * expand_ratio)
    parts = [conv_norm_activation(expanded, 1)] if expanded != in_channels else []
    parts += [conv_norm_activation(expanded, kernel, stride, groups=expanded),
              squeeze_excitation(expanded, max(1, in_channels // 4), activation=L.Swish),
              conv_norm_activation(out_channels, 1, activation=False)]
    parts = [part._replace(name=str(i)) for i, part in enumerate(parts)]
    if stride == 1 and in_channels == out_channels:
        return residual(serial(*parts, StochasticDepth(stochastic_depth_prob), name="block"), name=name)
    return serial(serial(*parts, name="block"), name=name)


def efficientnet_b0(num_classes: int = 1000, *, dropout: float = 0.2, stochastic_depth_prob: float = 0.2,
                    stages: tuple = B0_STAGES, name: str = "efficientnet_b0") -> Layer:
    """EfficientNet-B0: features (stem 3x3/2 -> 7 stages of MBConv -> 1x1 conv to 4 x the last width,
    1280) -> avgpool (spatial mean) -> classifier (Dropout(dropout) "0" -> Dense(num_classes) "1").
    (B, H, W, 3) -> (B, num_classes); 224x224 in ImageNet, any size >= 32 works."""
    total, built, blocks = sum(stage[-1] for stage in stages), [], 0
    for i, (ratio, kernel, stride, c_in, c_out, layers) in enumerate(stages):
        stage = []
        for j in range(layers):
            stage.append(mbconv(c_in if j == 0 else c_out, c_out, ratio, kernel, stride if j == 0 else 1,
                                stochastic_depth_prob * blocks / total, name=str(j)))
            blocks += 1
        built.append(serial(*stage, name=str(i + 1)))
    features = serial(conv_norm_activation(stages[0][3], 3, 2, name="0"), *built,
                      conv_norm_activation(4 * stages[-1][4], 1, name=str(len(stages) + 1)), name="features")
    classifier = serial(L.Dropout(dropout, name="0"), L.Dense(num_classes, name="1"), name="classifier")
    return serial(features, L.GlobalAvgPool(name="avgpool"), classifier, name=name)
