"""Which pixels a class score depends on: Grad-CAM, saliency, integrated gradients, occlusion.

Every gradient here is the model's own hand-derived backward, seeded with the one-hot
dy = e_c at the output (so dL/dx is the gradient of the class score y_c), via `trace`.
Class scores are the model's outputs (logits for the reference models), and `target`
is a class per example (an int for all), by default the predicted class.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, PyTree
from ..paths import find_layer, layer_paths
from ._trace import Trace, combinator_kind, run


def resolve(model: Layer, layer: str, what: str) -> str:
    """The full path of `layer` in `model` (the root's name may be left off); an unknown path
    raises, listing the paths and the closest; a path inside a unit combinator says so."""
    find_layer(model, layer)
    paths = layer_paths(model)
    path = layer if layer in paths else f"{model.name}/{layer}"
    parts = path.split("/")
    for parent in ("/".join(parts[:i]) for i in range(1, len(parts))):
        if combinator_kind(paths[parent]) is None:
            raise ValueError(f"{what}: layer {path!r} sits inside {parent!r}, which is traced as one unit "
                             f"(only serial, parallel and residual are opened up); pick {parent!r}")
    return path


@functools.partial(jax.jit, static_argnames=("model",))
def logits(model: Layer, params, state, x) -> jax.Array:
    """The model's output on x in evaluation mode (jitted, one compile per model and shape)."""
    return model.apply(params, state, x)[0]


@functools.partial(jax.jit, static_argnames=("model",))
def seeded_trace(model: Layer, params, state, x, dy) -> Trace:
    """`trace` whose backward starts from dy = dL/d(output) (B, classes): the one-hot of a class
    score, a loss gradient. Jitted: every attribution and the report share one compile."""
    return run(model, params, state, x, seed=lambda y: (None, dy.astype(y.dtype)))


def _score(y, chosen):
    return jnp.take_along_axis(y, chosen[:, None], axis=-1)[:, 0]


def class_trace(model: Layer, params: PyTree, state: PyTree, x, target=None, *, what: str = "class_trace"):
    """(trace seeded with dy = one-hot at `target`, targets used (B,)); `trace.loss` holds y_c (B,)."""
    x = jnp.asarray(x)
    wanted = np.full(x.shape[0], -1) if target is None else np.broadcast_to(np.asarray(target), x.shape[:1])
    y = logits(model, params, state, x)
    n = y.shape[-1]
    bad = wanted[(wanted < 0) | (wanted >= n)] if target is not None else []
    if len(bad):
        raise ValueError(f"{what}: target {int(bad[0])} is out of range for a model with {n} classes "
                         f"(valid: 0..{n - 1})")
    wanted = jnp.asarray(wanted, jnp.int32)
    chosen = jnp.where(wanted < 0, jnp.argmax(y, axis=-1).astype(jnp.int32), wanted)
    result = seeded_trace(model, params, state, x, jax.nn.one_hot(chosen, n, dtype=y.dtype))
    return result._replace(loss=_score(result.outputs[model.name], chosen)), chosen


def grad_cam(model: Layer, params: PyTree, state: PyTree, x, target=None, *, layer: str) -> jax.Array:
    """Grad-CAM (Selvaraju et al. 2017) at the convolutional layer `layer` (a path):
    alpha_k = mean_{h,w} dy_c/dA^k,  map = ReLU(sum_k alpha_k A^k), upsampled (bilinear) to
    the input's H x W and divided by its maximum, so each map lies in [0, 1].

    Shapes: x (B, H, W, C) -> (B, H, W);  A = the layer's output (B, h, w, K).
    Backward: dy_c/dA from the model's hand backward seeded with dy = one-hot(c).
    """
    path = resolve(model, layer, "grad_cam")
    result, _ = class_trace(model, params, state, x, target, what="grad_cam")
    A, dA = result.outputs[path], result.output_grads[path]
    if getattr(A, "ndim", 0) != 4:
        conv = [p for p, a in result.outputs.items() if getattr(a, "ndim", 0) == 4]
        raise ValueError(f"grad_cam: layer {path!r} gives outputs of shape {getattr(A, 'shape', None)}, "
                         f"without the spatial axes (B, h, w, K) Grad-CAM needs; layers with them: "
                         f"{', '.join(conv) or 'none'}")
    alpha = dA.mean(axis=(1, 2))                                    # (B, K)
    cam = jax.nn.relu(jnp.einsum("bhwk,bk->bhw", A, alpha))
    cam = jax.image.resize(cam, (x.shape[0], *x.shape[1:3]), "linear")
    peak = cam.max(axis=(1, 2), keepdims=True)
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1), 0)


def saliency(model: Layer, params: PyTree, state: PyTree, x, target=None) -> jax.Array:
    """Saliency (Simonyan et al. 2014): the gradient of the class score, dy_c/dx.

    Shapes: x (B, *in_shape) -> (B, *in_shape), signed (take |.| or max over channels to draw).
    Backward: the model's hand backward seeded with dy = one-hot(c).
    """
    return class_trace(model, params, state, x, target, what="saliency")[0].input_grad


class Attributions(NamedTuple):
    """Integrated gradients: `values` (B, *in_shape); `gap` (B,) = sum(values) - (y_c(x) - y_c(x'))."""
    values: jax.Array
    gap: jax.Array
    score_change: jax.Array


def integrated_gradients(model: Layer, params: PyTree, state: PyTree, x, target=None, *,
                         baseline=None, steps: int = 64) -> Attributions:
    """Integrated gradients (Sundararajan et al. 2017) from baseline x' (zeros by default):
    IG_i = (x_i - x'_i) * mean_{s} dy_c/dx_i at x' + a_s (x - x'), a_s = (s + 1/2)/steps.
    Completeness: sum_i IG_i = y_c(x) - y_c(x'); `gap` measures how far (it shrinks with `steps`).

    Shapes: x (B, *in_shape) -> values (B, *in_shape), gap (B,).
    Backward: the model's hand backward seeded with dy = one-hot(c), at each a_s.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"integrated_gradients: steps must be a positive int, got {steps!r}")
    x = jnp.asarray(x)
    baseline = jnp.zeros_like(x) if baseline is None else jnp.broadcast_to(baseline, x.shape).astype(x.dtype)
    first, chosen = class_trace(model, params, state, x, target, what="integrated_gradients")
    total = jnp.zeros_like(x)
    dy = jax.nn.one_hot(chosen, first.outputs[model.name].shape[-1], dtype=x.dtype)
    for s in range(steps):
        a = (s + 0.5) / steps
        total = total + seeded_trace(model, params, state, baseline + a * (x - baseline), dy).input_grad
    values = (x - baseline) * total / steps
    at_baseline = _score(logits(model, params, state, baseline), chosen)
    change = first.loss - at_baseline
    gap = values.reshape(x.shape[0], -1).sum(axis=1) - change
    return Attributions(values, gap, change)


def occlusion(model: Layer, params: PyTree, state: PyTree, x, target=None, *, patch: int = 4,
              stride: int | None = None, fill: float = 0.0) -> jax.Array:
    """Occlusion (Zeiler & Fergus 2014): slide a `patch` x `patch` square of value `fill` with
    `stride` (default: patch) over the image; each pixel gets the mean drop y_c(x) - y_c(x
    occluded) over the patches that cover it (0 where none does). No gradients.

    Shapes: x (B, H, W, C) -> (B, H, W).
    """
    x = jnp.asarray(x)
    stride = stride or patch
    if x.ndim != 4 or patch < 1 or stride < 1:
        raise ValueError(f"occlusion: expected images (B, H, W, C) and patch, stride >= 1, got x of shape "
                         f"{x.shape}, patch={patch}, stride={stride}")
    B, H, W = x.shape[:3]
    first, chosen = class_trace(model, params, state, x, target, what="occlusion")
    corners = [(i, j) for i in range(0, max(H - patch, 0) + 1, stride) for j in range(0, max(W - patch, 0) + 1, stride)]
    drop, count = jnp.zeros((B, H, W), x.dtype), jnp.zeros((H, W), x.dtype)
    for i, j in corners:
        mask = jnp.zeros((H, W), x.dtype).at[i:i + patch, j:j + patch].set(1)
        occluded = x * (1 - mask[None, :, :, None]) + fill * mask[None, :, :, None]
        delta = first.loss - _score(logits(model, params, state, occluded), chosen)
        drop, count = drop + delta[:, None, None] * mask, count + mask
    return drop / jnp.maximum(count, 1)
