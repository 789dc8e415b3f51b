"""torchvision's ImageNet classifiers as fnn builders: ResNet-18/34, VGG-11/16, AlexNet, NHWC.

Each layer's path follows torchvision's module names ("resnet18/layer1/0/conv1",
"vgg16/features/0", "alexnet/classifier/6"), so `fnn.interop.load_torchvision` converts a
state_dict by name: "layer1.0.conv1.weight" -> params at "resnet18/layer1/0/conv1", key "W".
Inputs are (B, H, W, 3) images, standardised as the weights expect (`L.Normalize(IMAGENET_MEAN,
IMAGENET_STD)` in front); ImageNet uses 224x224, and any size the pools admit works (the
adaptive average pool fixes the classifier's input).

    model = fnn.models.resnet18()          # (B, 224, 224, 3) -> (B, 1000) logits, 11,689,512 params
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from .. import layers as L
from ..core import Layer, check_input
from ..gradcheck import Case
from ..layers.combinators import _named_calls, serial

VGG_LAYERS = {11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),   # torchvision's cfgs
              16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")}
RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def _flatten_channels_first(name: str = "flatten") -> Layer:
    """torch.flatten(x, 1) of the NCHW tensor: y[b, c H W + h W + w] = x[b, h, w, c], so that the
    first Linear's weight is torchvision's as it stands. Backward: dx = dy reshaped (C, H, W), moved back."""
    def init(key, in_shape):
        del key
        return (in_shape[0] * in_shape[1] * in_shape[2],), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x, min_ndim=3)
        return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1), state, x      # backward reads x's static shape

    def backward(params, cache, dy):
        b, h, w, c = cache.shape
        return (), dy.reshape(b, c, h, w).transpose(0, 2, 3, 1)

    return Layer(init, forward, backward, name)


def _basic_block(planes: int, stride: int, downsample: bool, name: str) -> Layer:
    """torchvision's BasicBlock: y = relu(bn2(conv2(relu(bn1(conv1(x))))) + s(x)), s = identity or
    downsample = conv1x1(stride)-BN. Children conv1, bn1, relu, conv2, bn2[, downsample]; relu is used
    twice, as in torchvision. Backward: dz = relu'(dy); dx = main chain's dx(dz) + s's dx(dz)."""
    main = (L.Conv2D(planes, 3, stride, 1, use_bias=False, name="conv1"), L.BatchNorm(name="bn1"),
            L.Relu(name="relu"), L.Conv2D(planes, 3, 1, 1, use_bias=False, name="conv2"), L.BatchNorm(name="bn2"))
    shortcut = (serial(L.Conv2D(planes, 1, stride, 0, use_bias=False, name="0"), L.BatchNorm(name="1"),
                       name="downsample"),) if downsample else ()
    children, calls, n = main + shortcut, _named_calls(name, main + shortcut), len(main)

    def init(key, in_shape):
        keys, shape, params, state = jax.random.split(key, len(children)), in_shape, [], []
        for call, k in zip(calls[:n], keys):
            shape, p, s = call("init", k, shape)
            params, state = params + [p], state + [s]
        if shortcut:
            _, p, s = calls[n]("init", keys[n], in_shape)
            params, state = params + [p], state + [s]
        return shape, tuple(params), tuple(state)

    def forward(params, state, x, *, key=None, train=False):
        del key                                                        # deterministic
        h, new_state, caches = x, list(state), []
        for i, call in enumerate(calls):
            h_in = h if i < n else x
            out, new_state[i], c = call("forward", params[i], state[i], h_in, train=train)
            h = out if i < n else h + out
            caches.append(c)
        if not shortcut:
            h = h + x
        y, _, c = main[2].forward((), (), h)                           # the second use of relu
        return y, tuple(new_state), (tuple(caches), c)

    def backward(params, cache, dy):
        caches, last = cache
        grads = [None] * len(children)
        _, dz = main[2].backward((), last, dy)
        if shortcut:
            grads[n], dx = children[n].backward(params[n], caches[n], dz)
        else:
            dx = dz
        d = dz
        for i in reversed(range(n)):
            grads[i], d = children[i].backward(params[i], caches[i], d)
        return tuple(grads), dx + d

    return Layer(init, forward, backward, name, children)


def resnet(depth: int = 18, num_classes: int = 1000) -> Layer:
    """torchvision's ResNet-18/34 (BasicBlocks): conv1 7x7/2 (64) -> bn1 -> relu -> maxpool 3x3/2 (pad 1)
    -> layer1..layer4 (64, 128, 256, 512 planes; blocks (2, 2, 2, 2) or (3, 4, 6, 3); stride 2 and a
    1x1 downsample where a stage starts, but layer1) -> avgpool (adaptive, 1x1) -> flatten -> fc.
    (B, H, W, 3) -> (B, num_classes); any H, W >= 1 (224 on ImageNet)."""
    if depth not in RESNET_BLOCKS:
        raise ValueError(f"resnet: depth must be one of {sorted(RESNET_BLOCKS)}, got {depth!r}")
    _check_classes("resnet", num_classes)
    stages, planes_in = [], 64
    for stage, (blocks, planes) in enumerate(zip(RESNET_BLOCKS[depth], (64, 128, 256, 512), strict=True)):
        stride = 1 if stage == 0 else 2
        first = _basic_block(planes, stride, stride != 1 or planes_in != planes, "0")
        rest = [_basic_block(planes, 1, False, str(i)) for i in range(1, blocks)]
        stages.append(serial(first, *rest, name=f"layer{stage + 1}"))
        planes_in = planes
    return serial(L.Conv2D(64, 7, 2, 3, use_bias=False, name="conv1"), L.BatchNorm(name="bn1"),
                  L.Relu(name="relu"), L.MaxPool2D(3, 2, 1, name="maxpool"), *stages,
                  L.AdaptiveAvgPool2D(1, name="avgpool"), _flatten_channels_first(),
                  L.Dense(num_classes, name="fc"), name=f"resnet{depth}")


def _check_classes(name: str, num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive int, got {num_classes!r}")


def _numbered(makers: list[Callable[..., Layer]], name: str) -> Layer:
    """serial of makers[i](name=str(i)): the children numbered as a torch nn.Sequential's."""
    return serial(*(make(name=str(i)) for i, make in enumerate(makers)), name=name)


def _classifier(widths: tuple[int, ...], dropout_first: bool, dropout: float) -> Layer:
    """torchvision's classifier Sequential: [Dropout] Linear ReLU Dropout Linear ReLU [Dropout] Linear
    (VGG: dropout after each ReLU; AlexNet: before each hidden Linear)."""
    drop, parts = functools.partial(L.Dropout, dropout), []
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        parts += ([drop] if dropout_first and not last else []) + [functools.partial(L.Dense, width)]
        parts += [] if last else [L.Relu] + ([] if dropout_first else [drop])
    return _numbered(parts, "classifier")


def vgg(depth: int = 16, num_classes: int = 1000, *, dropout: float = 0.5) -> Layer:
    """torchvision's VGG-11/16 (no batch norm): features = [conv3x3 (pad 1) -> ReLU]... with 2x2 max
    pools ("M" in VGG_LAYERS), numbered as torchvision's Sequential -> avgpool (adaptive, 7x7) -> flatten
    -> classifier (Linear 25088-4096, ReLU, Dropout, Linear 4096-4096, ReLU, Dropout, Linear).
    (B, H, W, 3) -> (B, num_classes); H, W >= 32 (224 on ImageNet)."""
    if depth not in VGG_LAYERS:
        raise ValueError(f"vgg: depth must be one of {sorted(VGG_LAYERS)}, got {depth!r}")
    _check_classes("vgg", num_classes)
    features: list = []
    for v in VGG_LAYERS[depth]:
        features += [functools.partial(L.MaxPool2D, 2)] if v == "M" else \
            [functools.partial(L.Conv2D, v, 3, 1, 1), L.Relu]
    return serial(_numbered(features, "features"), L.AdaptiveAvgPool2D(7, name="avgpool"),
                  _flatten_channels_first(), _classifier((4096, 4096, num_classes), False, dropout),
                  name=f"vgg{depth}")


def alexnet(num_classes: int = 1000, *, dropout: float = 0.5) -> Layer:
    """torchvision's AlexNet: features = conv11x11/4 (pad 2, 64) ReLU maxpool3x3/2, conv5x5 (pad 2, 192)
    ReLU maxpool, conv3x3 (384, 256, 256, pad 1) each with ReLU, maxpool -> avgpool (adaptive, 6x6)
    -> flatten -> classifier (Dropout, Linear 9216-4096, ReLU, Dropout, Linear 4096-4096, ReLU, Linear).
    (B, H, W, 3) -> (B, num_classes); H, W >= 63 (224 on ImageNet)."""
    _check_classes("alexnet", num_classes)
    conv = lambda c, k, s, p: [functools.partial(L.Conv2D, c, k, s, p), L.Relu]     # noqa: E731
    pool = functools.partial(L.MaxPool2D, 3, 2)
    features = [*conv(64, 11, 4, 2), pool, *conv(192, 5, 1, 2), pool,
                *conv(384, 3, 1, 1), *conv(256, 3, 1, 1), *conv(256, 3, 1, 1), pool]
    return serial(_numbered(features, "features"),
                  L.AdaptiveAvgPool2D(6, name="avgpool"), _flatten_channels_first(),
                  _classifier((4096, 4096, num_classes), True, dropout), name="alexnet")


def resnet18(num_classes: int = 1000) -> Layer:
    """torchvision.models.resnet18 (11,689,512 params with 1000 classes); see `resnet`."""
    return resnet(18, num_classes)


def resnet34(num_classes: int = 1000) -> Layer:
    """torchvision.models.resnet34 (21,797,672 params with 1000 classes); see `resnet`."""
    return resnet(34, num_classes)


def vgg11(num_classes: int = 1000) -> Layer:
    """torchvision.models.vgg11 (132,863,336 params with 1000 classes); see `vgg`."""
    return vgg(11, num_classes)


def vgg16(num_classes: int = 1000) -> Layer:
    """torchvision.models.vgg16 (138,357,544 params with 1000 classes); see `vgg`."""
    return vgg(16, num_classes)


CASES = (   # a narrow stand-in for the ResNet block (the full models are checked against torch in tests)
    Case("torchvision-basic-block", lambda: _basic_block(4, 1, False, "0"), (5, 5, 4), batch=2),
    Case("torchvision-basic-block-downsample", lambda: _basic_block(4, 2, True, "0"), (5, 5, 2), batch=2),
    Case("torchvision-basic-block-train", lambda: _basic_block(4, 2, True, "0"), (5, 5, 2), train=True, batch=2),
    Case("torchvision-flatten", lambda: _flatten_channels_first(), (2, 3, 4)),
)
