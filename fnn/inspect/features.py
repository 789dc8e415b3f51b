"""What each layer computes: gradient norms, activation statistics, filters, feature maps,
and the input that most excites a unit (activation maximisation)."""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..core import Layer, PyTree
from ..paths import layer_paths
from ._trace import run, trace
from .attribution import resolve

# Output bounds of the saturating activations, by the leaf layer's name (a user-named layer
# passes `bounds={path: (lo, hi)}`).
SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}


def _norm(tree) -> float:
    leaves = jax.tree.leaves(tree)
    return math.sqrt(sum(float(jnp.sum(jnp.square(a))) for a in leaves)) if leaves else 0.0


def _leaves(model: Layer, outputs: dict) -> list[str]:
    """The traced paths that are leaves of the walk (no traced child below them)."""
    return [p for p in outputs if not any(q.startswith(p + "/") for q in outputs)]


class GradientNorms(NamedTuple):
    """Per layer: ||dL/dy|| over the whole batch, and ||dL/dparams|| (None without params)."""
    output: float
    params: float | None


def gradient_norms(model: Layer, params: PyTree, state: PyTree, x, y, loss: Callable, *,
                   train: bool = False, key: jax.Array | None = None) -> dict[str, GradientNorms]:
    """Frobenius norms of each leaf layer's output gradient and parameter gradient, from `trace`
    (one forward, one hand backward): {path: GradientNorms(output, params)}, input side first."""
    return norms_of(model, trace(model, params, state, x, y, loss, train=train, key=key))


def norms_of(model: Layer, t) -> dict[str, GradientNorms]:
    """`gradient_norms` from a `Trace` already computed with a loss."""
    return {p: GradientNorms(_norm(t.output_grads[p]),
                             _norm(t.param_grads[p]) if jax.tree.leaves(t.param_grads[p]) else None)
            for p in _leaves(model, t.outputs)}


class ActivationStats(NamedTuple):
    """Per layer output: mean, std, fraction of exact zeros (dead ReLUs), fraction within
    `tol` of a saturating activation's bounds (None for other layers)."""
    mean: float
    std: float
    zeros: float
    saturated: float | None


def activation_stats(model: Layer, params: PyTree, state: PyTree, x, *, train: bool = False,
                     key: jax.Array | None = None, tol: float = 0.01,
                     bounds: dict | None = None) -> dict[str, ActivationStats]:
    """Statistics of every leaf layer's output on the batch x: {path: ActivationStats}. A unit is
    saturated when it lies within tol * (hi - lo) of lo or hi, the bounds of a Sigmoid (0, 1)
    or Tanh (-1, 1) layer by name, or `bounds[path]` given."""
    return stats_of(model, run(model, params, state, x, key=key, train=train).outputs, tol=tol, bounds=bounds)


def stats_of(model: Layer, outputs: dict, *, tol: float = 0.01, bounds: dict | None = None) -> dict:
    """`activation_stats` from the layer outputs of a `Trace` already computed (array outputs only)."""
    layers = layer_paths(model)
    out = {}
    for p in _leaves(model, outputs):
        if not hasattr(outputs[p], "shape"):            # a tuple output ((y, state), (y, lengths))
            continue
        a = jnp.asarray(outputs[p])
        lo_hi = (bounds or {}).get(p) or SATURATING.get(layers[p].name)
        saturated = None
        if lo_hi is not None:
            lo, hi = lo_hi
            near = (a - lo <= tol * (hi - lo)) | (hi - a <= tol * (hi - lo))
            saturated = float(jnp.mean(near))
        out[p] = ActivationStats(float(a.mean()), float(a.std()), float(jnp.mean(a == 0)), saturated)
    return out


def filters(model: Layer, params: PyTree, layer: str) -> jax.Array:
    """A convolutional layer's kernels as images: W (kh, kw, C_in, K) -> (K, kh, kw, C_in)."""
    from ..paths import tree_by_path
    path = resolve(model, layer, "filters")
    own = tree_by_path(model, params).get(path)
    W = own.get("W") if isinstance(own, dict) else None
    if W is None or W.ndim != 4:
        raise ValueError(f"filters: layer {path!r} has no 2-D convolution kernel W of shape "
                         f"(kh, kw, C_in, K); its params are {jax.tree.map(jnp.shape, own)}")
    return jnp.transpose(W, (3, 0, 1, 2))


def activation_maps(model: Layer, params: PyTree, state: PyTree, x, layer: str) -> jax.Array:
    """The output of `layer` (a path) on x, in evaluation mode: (B, h, w, K) for a conv layer."""
    path = resolve(model, layer, "activation_maps")
    return run(model, params, state, jnp.asarray(x)).outputs[path]


def _blur(x, sigma):
    """Separable Gaussian blur (3 taps) of images (H, W, C), edges clamped."""
    w = jnp.exp(-jnp.array([1.0, 0.0, 1.0], x.dtype) / (2 * sigma ** 2))
    w = w / w.sum()
    for axis in (0, 1):
        pad = [(1, 1) if a == axis else (0, 0) for a in range(x.ndim)]
        xp = jnp.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = sum(w[i] * jax.lax.slice_in_dim(xp, i, i + n, axis=axis) for i in range(3))
    return x


@functools.partial(jax.jit, static_argnames=("model", "path", "jitter", "blur"))
def _ascent_step(model, path, params, state, x, dA, key, rate, l2, sigma, jitter, blur):
    shift = jax.random.randint(key, (2,), -jitter, jitter + 1)
    shifted = jnp.roll(x, (shift[0], shift[1]), axis=(0, 1))
    t = run(model, params, state, shifted[None], inject={path: dA})
    g = jnp.roll(t.input_grad[0], (-shift[0], -shift[1]), axis=(0, 1))
    x = x + rate * g / (jnp.mean(jnp.abs(g)) + 1e-8) - rate * l2 * x
    x = _blur(x, sigma) if blur else x
    objective = jnp.sum(t.outputs[path] * dA)
    return jnp.clip(x, 0.0, 1.0), objective


def activation_maximization(model: Layer, params: PyTree, state: PyTree, unit: int, *, layer: str,
                            in_shape: tuple, steps: int = 200, learning_rate: float = 0.05,
                            l2: float = 1e-3, blur_every: int = 4, blur_sigma: float = 0.5,
                            jitter: int = 1, key: jax.Array | None = None) -> tuple[jax.Array, float]:
    """Gradient ascent on the input (Erhan et al. 2009) for the mean activation of channel
    `unit` of `layer`: x <- clip(x + lr g / mean|g| - lr l2 x), blurred every `blur_every`
    steps and jittered by up to `jitter` pixels each step; pixels kept in [0, 1].
    Returns (image of shape in_shape, the final objective).

    Backward: the model's hand backward, seeded at the layer's output with dA = 1/(h w) at unit.
    """
    path = resolve(model, layer, "activation_maximization")
    key = jax.random.PRNGKey(0) if key is None else key
    x = 0.5 + 0.05 * jax.random.normal(key, in_shape)
    shape = jax.eval_shape(lambda z: run(model, params, state, z).outputs[path], x[None]).shape
    if not 0 <= unit < shape[-1]:
        raise ValueError(f"activation_maximization: unit {unit} is out of range for layer {path!r} "
                         f"with {shape[-1]} channels")
    dA = jnp.zeros(shape, x.dtype).at[..., unit].set(1.0 / math.prod(shape[1:-1]))
    objective = 0.0
    for s in range(steps):
        x, objective = _ascent_step(model, path, params, state, x, dA, jax.random.fold_in(key, s),
                                    learning_rate, l2, blur_sigma, jitter,
                                    blur_every > 0 and s % blur_every == 0)
    return x, float(objective)
