"""What a model is made of, read from its structure (never its name): which layers are
convolutions, dense layers, recurrent cells and attention, and which pictures fit.

A layer is recognised by its parameters (`fnn.paths.tree_by_path`), a feature map by its
output's shape (one shape-only forward pass, `jax.eval_shape`):

    convolution   a 4-D kernel W (kh, kw, C_in, K)
    dense         a 2-D W (d_in, d_out)
    recurrent     W_x, W_h, b_x, b_h (gates G = W_h columns / rows: 1 RNN, 3 GRU, 4 LSTM)
    attention     W_q, W_k, W_v, W_o (MultiHeadAttention)
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax

from ..core import Layer, PyTree
from ..paths import layer_paths, tree_by_path
from ._trace import run

GATE_NAMES = {4: ("input", "forget", "candidate", "output"), 3: ("reset", "update", "candidate")}


class Structure(NamedTuple):
    """The parts of a model that decide what `write_report` shows; paths in forward order.

    shapes:      traced leaf path -> its output shape for one example (None for a tuple output)
    weighted:    the traced leaves that hold parameters
    convs:       convolution paths;  dense: the first layer with params, when it is a dense
                 layer reading the whole flattened input (else None)
    recurrent:   recurrent layer paths -> gates G;  attention: attention layer paths
    grid:        (h, w) of the image grid the attention tokens come from, or None
    """
    shapes: dict
    weighted: frozenset
    convs: list
    dense: str | None
    recurrent: dict
    attention: list
    grid: tuple | None

    @property
    def kind(self) -> str:
        """"attention", "recurrent", "convolutional" or "dense": the family the report is for."""
        if self.attention:
            return "attention"
        if self.recurrent:
            return "recurrent"
        return "convolutional" if self.convs else "dense"

    def spatial(self) -> list:
        """Traced leaves whose output has spatial axes (h, w, K)."""
        return [p for p, s in self.shapes.items() if s is not None and len(s) == 3]


def _has(params, *keys) -> bool:
    return isinstance(params, dict) and all(k in params for k in keys)


def _shapes(model: Layer, params: PyTree, state: PyTree, x) -> dict:
    """Output shape of every traced leaf (one example, no batch axis), in forward order."""
    outputs = jax.eval_shape(lambda z: run(model, params, state, z).outputs, x[:1])
    order = [p for p in layer_paths(model) if p in outputs]         # eval_shape sorts dict keys
    leaves = [p for p in order if not any(q.startswith(p + "/") for q in outputs)]
    return {p: (tuple(outputs[p].shape[1:]) if hasattr(outputs[p], "shape") else None) for p in leaves}


def _first_dense(parts: dict, in_shape: tuple) -> str | None:
    """The first layer with params, if it is a dense layer that reads every input value."""
    for path, p in parts.items():
        if jax.tree.leaves(p):
            W = p.get("W") if isinstance(p, dict) else None
            ok = W is not None and W.ndim == 2 and W.shape[0] == math.prod(in_shape)
            return path if ok else None
    return None


def _grid(shapes: dict, attention: list) -> tuple | None:
    """(h, w) of the last feature map before the first attention layer, when its h * w
    positions are the attention's tokens (a ViT's patch grid)."""
    if not attention:
        return None
    order = list(shapes)
    first = next(i for i, p in enumerate(order) if attention[0] == p or attention[0].startswith(p + "/"))
    maps = [shapes[p] for p in order[:first] if shapes[p] is not None and len(shapes[p]) == 3]
    tokens = shapes[order[first]]
    if maps and tokens is not None and len(tokens) == 2 and maps[-1][0] * maps[-1][1] == tokens[0]:
        return maps[-1][:2]
    return None


def describe(model: Layer, params: PyTree, state: PyTree, x) -> Structure:
    """The `Structure` of `model` on inputs like x (B, *in_shape); shapes only, no real pass."""
    shapes = _shapes(model, params, state, x)
    parts = tree_by_path(model, params)
    convs = [p for p, w in parts.items() if _has(w, "W") and w["W"].ndim == 4]
    recurrent = {p: w["W_h"].shape[1] // w["W_h"].shape[0] for p, w in parts.items()
                 if _has(w, "W_x", "W_h", "b_x", "b_h")}
    attention = [p for p, w in parts.items() if _has(w, "W_q", "W_k", "W_v", "W_o")]
    held = [p for p, w in parts.items() if jax.tree.leaves(w)]
    weighted = frozenset(t for t in shapes if any(p == t or p.startswith(t + "/") for p in held))
    return Structure(shapes, weighted, convs, _first_dense(parts, tuple(x.shape[1:])), recurrent, attention,
                     _grid(shapes, attention))


def feature_layer(s: Structure) -> str | None:
    """Where to show feature maps: the first parameter-free leaf after the first convolution
    with the same output shape (its activation), else the convolution itself."""
    if not s.convs or s.convs[0] not in s.shapes:
        return s.convs[0] if s.convs else None
    order = list(s.shapes)
    start = order.index(s.convs[0])
    for path in order[start + 1:]:
        if s.shapes[path] != s.shapes[s.convs[0]] or path in s.convs:
            break
        if path not in s.weighted:
            return path
    return s.convs[0]


def cam_layer(s: Structure) -> tuple[str | None, str]:
    """(the layer Grad-CAM reads by default, "") or (None, the one-line reason it cannot): the
    last feature map with spatial axes, stepping back over a parameter-free downsampling."""
    spatial = s.spatial()
    if not spatial:
        what = "no convolutional layer" if not s.convs else "no layer with spatial axes (B, h, w, K)"
        return None, f"Grad-CAM: {what} in this model"
    order = list(s.shapes)
    if s.attention and _after(order, s.attention[0], spatial[-1]):
        return None, (f"Grad-CAM: the last feature map ({spatial[-1]}) comes before the attention "
                      f"layers, which mix every patch with every other; see the attention rollout")
    last = spatial[-1]
    if len(spatial) > 1 and last not in s.weighted and s.shapes[last][:2] < s.shapes[spatial[-2]][:2]:
        last = spatial[-2]
    return last, ""


def _after(order: list, path: str, leaf: str) -> bool:
    """Whether the layer at `path` (perhaps inside a traced unit) runs after the traced `leaf`."""
    at = next(i for i, p in enumerate(order) if path == p or path.startswith(p + "/"))
    return at > order.index(leaf)
