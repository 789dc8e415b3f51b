"""The input and output of every BatchNorm on a batch, for the report's histograms.

A BatchNorm is recognised by its arrays (params gamma, beta; state mean, var), never its
name. Its output is the traced one; its input is the output recorded just before it in
forward order (the previous sibling in a serial, the block input for a residual's first
layer), kept only when the BatchNorm's own evaluation-mode forward maps it to the recorded
output: a layout this does not foresee is left out rather than drawn wrong.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..core import Layer, PyTree
from ..paths import layer_paths, tree_by_path


def batchnorm_paths(model: Layer, params: PyTree, state: PyTree) -> list:
    """Paths of the layers with params {gamma, beta} and state {mean, var}, in forward order."""
    return _batchnorm_paths(layer_paths(model), tree_by_path(model, params), tree_by_path(model, state))


def _batchnorm_paths(layers: dict, p: dict, s: dict) -> list:
    """`batchnorm_paths` from the already built {path: layer}, {path: params}, {path: state}."""
    return [path for path in layers
            if isinstance(p.get(path), dict) and {"gamma", "beta"} <= set(p[path])
            and isinstance(s.get(path), dict) and {"mean", "var"} <= set(s[path])]


def batchnorm_inputs_outputs(model: Layer, params: PyTree, state: PyTree, outputs: dict) -> dict:
    """{BatchNorm path: (input, output)} from a trace's `outputs` (path -> array, in forward order)."""
    layers, p, s = layer_paths(model), tree_by_path(model, params), tree_by_path(model, state)
    # forward order from the model: a jitted trace returns its dict sorted by key
    order = [path for path in layers if path in outputs]
    position, found = {path: i for i, path in enumerate(order)}, {}
    for path in _batchnorm_paths(layers, p, s):
        if position.get(path, 0) == 0:
            continue
        x, y = outputs[order[position[path] - 1]], outputs[path]
        if not hasattr(x, "shape") or x.shape != y.shape:
            continue
        again = layers[path].apply(p[path], s[path], x)[0]
        if jnp.allclose(again, y, rtol=1e-4, atol=1e-5):
            found[path] = (np.asarray(x), np.asarray(y))
    return found
