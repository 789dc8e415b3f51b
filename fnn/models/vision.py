"""Image classifiers on (H, W, C) images, NHWC: the MLP, the CNN, a small ResNet and a small ViT."""
from __future__ import annotations

from .. import layers as L
from ..core import Layer
from ..initializers import he_uniform
from ..layers.combinators import residual, serial


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


def _augment(flip: bool, max_shift: int) -> list[Layer]:
    return ([L.RandomFlip()] if flip else []) + ([L.RandomTranslate(max_shift)] if max_shift else [])


def cnn(num_classes: int = 10, *, widths: tuple[int, ...] = (32, 64), top: int = 64, hidden: int = 128,
        batch_norm: bool = True, dropout: float = 0.3, flip: bool = False, max_shift: int = 0) -> Layer:
    """[RandomFlip] -> [RandomTranslate(max_shift)] -> conv(w)-[BN]-ReLU-maxpool2 per w in widths
    -> [conv(top)-[BN]-ReLU, no pool, when top > 0] -> head -> Dense(num_classes). The head is
    Flatten-Dense(hidden)-ReLU-[Dropout], or GlobalAvgPool-[Dropout] when hidden == 0. Convs 3x3 SAME.
    The augmentations act in training only. top=0 gives the earlier recipe's layers (92.3%, docs/results.md)."""
    def conv(features):
        norm = [L.BatchNorm()] if batch_norm else []
        return [L.Conv2D(features, (3, 3), use_bias=not batch_norm), *norm, L.Relu()]
    body = [layer for w in widths for layer in (*conv(w), L.MaxPool2D((2, 2)))] + (conv(top) if top else [])
    head = [L.Flatten(), L.Dense(hidden, W_init=he_uniform), L.Relu()] if hidden else [L.GlobalAvgPool()]
    if dropout > 0:
        head.append(L.Dropout(dropout))
    return serial(*_augment(flip, max_shift), *body, *head, L.Dense(num_classes), name="cnn")


def _conv_bn(features: int, size: int, stride: int, batch_norm: bool, name: str) -> list[Layer]:
    norm = [L.BatchNorm(name=f"{name}_bn")] if batch_norm else []
    return [L.Conv2D(features, size, stride, use_bias=not batch_norm, name=name), *norm]


def residual_block(features: int, stride: int = 1, *, project: bool = False, batch_norm: bool = True,
                   name: str = "block") -> Layer:
    """ReLU(conv3x3(stride)-BN-ReLU-conv3x3-BN (x) + s(x)), s = identity, or conv1x1(stride)-BN
    when `project` (the block changes the shape): (B, H, W, C) -> (B, H/stride, W/stride, features)."""
    branch = serial(*_conv_bn(features, 3, stride, batch_norm, "conv_1"), L.Relu(),
                    *_conv_bn(features, 3, 1, batch_norm, "conv_2"), name="branch")
    shortcut = serial(*_conv_bn(features, 1, stride, batch_norm, "conv"), name="projection") if project else None
    return serial(residual(branch, shortcut=shortcut), L.Relu(), name=name)


def resnet_small(num_classes: int = 10, *, width: int = 16, batch_norm: bool = True) -> Layer:
    """conv3x3(width)-BN-ReLU -> block(width) -> block(2 width, stride 2) -> block(4 width, stride 2)
    -> GlobalAvgPool -> Dense(num_classes). Blocks: see `residual_block` (1x1 projections where the
    shape changes). On (28, 28, 1): 28x28x16 -> 14x14x32 -> 7x7x64 with the default width 16."""
    return serial(*_conv_bn(width, 3, 1, batch_norm, "stem"), L.Relu(),
                  residual_block(width, batch_norm=batch_norm, name="block_1"),
                  residual_block(2 * width, 2, project=True, batch_norm=batch_norm, name="block_2"),
                  residual_block(4 * width, 2, project=True, batch_norm=batch_norm, name="block_3"),
                  L.GlobalAvgPool(), L.Dense(num_classes, name="head"), name="resnet")


def vit(num_classes: int = 10, *, width: int = 64, depth: int = 4, heads: int = 4, mlp_dim: int = 192,
        dropout: float = 0.0, patch: int = 4, image_size: int = 28, flip: bool = True,
        max_shift: int = 1, drop_path: float = 0.1, stem: str = "conv") -> Layer:
    """[RandomFlip] -> [RandomTranslate(max_shift)] -> stem -> Reshape((T, width)), T = (image_size /
    patch)^2 (49 on 28x28) -> LearnedPositions -> depth x TransformerEncoderBlock(width, heads, mlp_dim,
    dropout, drop_path_i) (pre-LN) -> LayerNorm -> GlobalAvgPool (mean over tokens) -> Dense(num_classes).

    stem "patch": Conv2D(width, patch, stride patch), one token per patch; "conv" (Xiao et al. 2021,
    early convolutions): log2(patch) x [Conv2D 3x3 stride 2 - BatchNorm - ReLU], widths width / 2^(n-j),
    then Conv2D(width, 1). drop_path_i = drop_path * i / (depth - 1): stochastic depth growing with depth."""
    if image_size % patch:
        raise ValueError(f"vit: image_size {image_size} is not a multiple of patch {patch}")
    tokens = (image_size // patch) ** 2
    blocks = [L.TransformerEncoderBlock(width, heads, mlp_dim, dropout=dropout,
                                        drop_path=drop_path * i / max(depth - 1, 1), name=f"block_{i + 1}")
              for i in range(depth)]
    return serial(*_augment(flip, max_shift), *_vit_stem(stem, width, patch),
                  L.Reshape((tokens, width), name="tokens"), L.LearnedPositions(name="positions"), *blocks,
                  L.LayerNorm(), L.GlobalAvgPool(), L.Dense(num_classes, name="head"), name="vit")


VIT_STEMS = ("patch", "conv")     # vit's stem choices (the command line's --stem)


def _vit_stem(stem: str, width: int, patch: int) -> list[Layer]:
    if stem == "patch":
        return [L.Conv2D(width, patch, stride=patch, padding="VALID", name="patches")]
    halvings = patch.bit_length() - 1
    if stem != "conv" or patch != 2 ** halvings or halvings < 1:
        raise ValueError(f"vit: stem must be 'patch', or 'conv' with a patch that is a power of 2, "
                         f"got stem={stem!r}, patch={patch}")
    convs = [layer for j in range(halvings)
             for layer in (*_conv_bn(max(width >> (halvings - 1 - j), 1), 3, 2, True, f"stem_{j + 1}"), L.Relu())]
    return [*convs, L.Conv2D(width, 1, name="patches")]
