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
    p, s = tree_by_path(model, params), tree_by_path(model, state)
    return [path for path in layer_paths(model)
            if isinstance(p.get(path), dict) and {"gamma", "beta"} <= set(p[path])
            and isinstance(s.get(path), dict) and {"mean", "var"} <= set(s[path])]


def batchnorm_inputs_outputs(model: Layer, params: PyTree, state: PyTree, outputs: dict) -> dict:
    """{BatchNorm path: (input, output)} from a trace's `outputs` (path -> array, in forward order)."""
    layers, p, s = layer_paths(model), tree_by_path(model, params), tree_by_path(model, state)
    # forward order from the model: a jitted trace returns its dict sorted by key
    order, found = [path for path in layers if path in outputs], {}
    for path in batchnorm_paths(model, params, state):
        if path not in outputs or order.index(path) == 0:
            continue
        x, y = outputs[order[order.index(path) - 1]], outputs[path]
        if not hasattr(x, "shape") or x.shape != y.shape:
            continue
        again = layers[path].apply(p[path], s[path], x)[0]
        if jnp.allclose(again, y, rtol=1e-4, atol=1e-5):
            found[path] = (np.asarray(x), np.asarray(y))
    return found


def plot_batchnorm_histograms(pairs: dict, path, *, bins: int = 40):
    """One row per BatchNorm: the histogram of its input and of its output (all values)."""
    from .plots import _pyplot, _save
    plt = _pyplot()
    fig, axes = plt.subplots(len(pairs), 2, figsize=(8, 1.9 * len(pairs)), squeeze=False)
    for row, (name, arrays) in enumerate(pairs.items()):
        for col, (side, values) in enumerate(zip(("input", "output"), arrays)):
            values = values.ravel()
            ax = axes[row, col]
            ax.hist(values, bins=bins, color="tab:blue" if col == 0 else "tab:orange")
            ax.set_title(f"{side}: mean {values.mean():.2f}, std {values.std():.2f}", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[row, 0].set_ylabel(name, fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
