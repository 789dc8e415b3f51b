"""Perceptual (feature-reconstruction) loss: a distance between feature maps of a frozen network.

    L(x, y) = sum_l w_l mean((phi_l(x) - phi_l(y))^2)

phi_l is the output of child `taps[l]` of a `serial` network (a trained CNN's first blocks,
or a VGG from `fnn.models.torchvision`), run with `train=False` and fixed params and state.
`.grad` is dL/dx through the network's own hand-written `backward` (no autodiff): the
cotangent 2 w_l (phi_l(x) - phi_l(y)) / size(phi_l) enters at each tap on the way back.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from ..core import Layer, check_float
from ..gradcheck import FunctionCase
from .base import Array, Loss, check_same_shape


def _checked_taps(name: str, network: Layer, params, taps, layer_weights) -> tuple[tuple, tuple]:
    if not isinstance(network, Layer) or not network.children or not isinstance(params, tuple):
        raise TypeError(f"{name}: expected a serial network (a Layer with children) and its params tuple, "
                        f"got {type(network).__name__} with params {type(params).__name__}")
    taps = tuple(taps)
    count = len(network.children)
    if not taps or any(not isinstance(t, int) or not 0 <= t < count for t in taps) or list(taps) != sorted(set(taps)):
        raise ValueError(f"{name}: taps must be increasing child indices in [0, {count}), got {taps}")
    layer_weights = (1.0,) * len(taps) if layer_weights is None else tuple(float(w) for w in layer_weights)
    if len(layer_weights) != len(taps):
        raise ValueError(f"{name}: expected one layer weight per tap ({len(taps)}), got {len(layer_weights)}")
    return taps, layer_weights


def perceptual(network: Layer, params: tuple, state: tuple, *, taps: Sequence[int],
               layer_weights: Sequence[float] | None = None, name: str = "perceptual") -> Loss:
    """L(x, y) = sum_l w_l mean((phi_l(x) - phi_l(y))^2), phi_l = output of `network.children[taps[l]]`.

    Shapes: x, y (B, *in_shape) of the network -> a scalar; `.grad(x, y)` is dL/dx, shaped like x.
    Backward: dphi_l = 2 w_l (phi_l(x) - phi_l(y)) / size(phi_l), carried back through each child's
    `backward` from the last tap to the input, adding dphi_l at tap l. The target is held fixed.
    """
    taps, layer_weights = _checked_taps(name, network, params, taps, layer_weights)
    children = network.children[: taps[-1] + 1]

    def features(x):
        maps, caches = [], []
        for i, child in enumerate(children):
            x, _, cache = child.forward(params[i], state[i], x, train=False)
            caches.append(cache)
            maps.append(x)
        return [maps[t] for t in taps], caches

    def checked(x, y):
        check_float(name, x)
        check_same_shape(name, x, y, ("x", "y"))
        return jnp.asarray(x), jnp.asarray(y).astype(jnp.asarray(x).dtype)

    def value(x: Array, y: Array) -> Array:
        """L(x, y) = sum_l w_l mean((phi_l(x) - phi_l(y))^2) over the tapped feature maps."""
        (fx, _), (fy, _) = features(checked(x, y)[0]), features(checked(x, y)[1])
        return sum(w * jnp.mean((a - b) ** 2) for w, a, b in zip(layer_weights, fx, fy))

    def grad(x: Array, y: Array) -> Array:
        x, y = checked(x, y)
        (fx, caches), (fy, _) = features(x), features(y)
        tap_grads = {t: 2 * w * (a - b) / a.size
                     for t, w, a, b in zip(taps, layer_weights, fx, fy)}
        dy = jnp.zeros_like(fx[-1])
        for i in reversed(range(len(children))):
            dy = dy + tap_grads[i] if i in tap_grads else dy
            _, dy = children[i].backward(params[i], caches[i], dy)
        return dy

    return Loss(value, grad, name)


def _tiny_case(key):
    """A gradcheck row: two taps of a two-conv network on (2, 6, 6, 1) float64 images."""
    from ..layers import Conv2D, Tanh
    from ..layers.combinators import serial
    network = serial(Conv2D(3, (3, 3)), Tanh(), Conv2D(2, (3, 3), stride=2), Tanh())
    _, params, state = network.init(jax.random.fold_in(key, 7), (6, 6, 1))
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    loss = perceptual(network, params, state, taps=(1, 3), layer_weights=(0.5, 2.0))
    k1, k2 = jax.random.split(key)
    primals = tuple(jax.random.normal(k, (2, 6, 6, 1), jnp.float64) for k in (k1, k2))
    return loss, lambda primals, ct: (ct * loss.grad(*primals), None), primals


CASES = (FunctionCase("perceptual", _tiny_case),)
