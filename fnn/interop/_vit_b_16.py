"""torchvision's ViT-B/16 (any VisionTransformer without a representation layer) state_dict ->
(params, state) of `fnn.models.vit_b_16` / `vision_transformer`, layer by layer:

    conv_proj, heads.head                 conv2d_from_torch, linear_from_torch
    class_token (1, 1, E)                 ClassToken W (E,)
    encoder.pos_embedding (1, T + 1, E)   LearnedPositions W (T + 1, E)
    encoder_layer_i.ln_1 / .ln_2 / encoder.ln    LayerNorm gamma, beta = weight, bias
    encoder_layer_i.self_attention        multihead_attention_from_torch (packed in_proj split in q, k, v)
    encoder_layer_i.mlp.0 / .mlp.3        linear_from_torch (fnn's block: mlp/Dense_1, mlp/Dense_2)
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..core import PyTree
from ..models.vit_b_16 import vision_transformer
from ..paths import map_paths, tree_by_path
from .layers import conv2d_from_torch, linear_from_torch, multihead_attention_from_torch

_WHO = "load_torchvision('vit_b_16')"
# fnn's TransformerEncoderBlock children -> torchvision's EncoderBlock modules
_BLOCK = {"LayerNorm": "ln_1", "MultiHeadAttention": "self_attention", "mlp/LayerNorm": "ln_2",
          "mlp/Dense_1": "mlp.0", "mlp/Dense_2": "mlp.3"}


def torch_prefix(path: str) -> str:
    """An fnn layer path ("vit_b_16/encoder/layers/encoder_layer_0/mlp/Dense_1") -> torchvision's
    module name ("encoder.layers.encoder_layer_0.mlp.0")."""
    parts = path.split("/")[1:]
    if len(parts) > 3 and parts[1] == "layers":
        parts = [*parts[:3], _BLOCK.get("/".join(parts[3:]), "/".join(parts[3:]))]
    return ".".join(parts)


def _sub(state_dict: Mapping, prefix: str, used: set) -> dict:
    """The tensors under `prefix.` with the prefix taken off (what a per-layer converter reads)."""
    out = {k[len(prefix) + 1:]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}
    if not out:
        raise KeyError(f"{_WHO}: the state_dict has no tensors under {prefix!r}")
    used.update(f"{prefix}.{k}" for k in out)
    return out


def _layer_params(prefix: str, keys, state_dict: Mapping, used: set) -> dict:
    """One fnn layer's params from the tensors of torchvision's module `prefix`."""
    if prefix in ("class_token", "encoder.pos_embedding"):
        used.add(prefix)
        value = np.asarray(state_dict[prefix])
        return {"W": jnp.asarray(value.reshape(value.shape[-2:])[0] if prefix == "class_token" else value[0])}
    sub = _sub(state_dict, prefix, used)
    if "W_q" in keys:
        return multihead_attention_from_torch(sub)
    if "gamma" in keys:
        return {"gamma": jnp.asarray(np.asarray(sub["weight"])), "beta": jnp.asarray(np.asarray(sub["bias"]))}
    return (conv2d_from_torch if np.ndim(sub["weight"]) == 4 else linear_from_torch)(sub)


def _config(state_dict: Mapping) -> tuple:
    """vision_transformer's (image_size, patch, layers, heads?, width, mlp, classes) from tensor shapes."""
    for key in ("conv_proj.weight", "encoder.pos_embedding", "heads.head.weight"):
        if key not in state_dict:
            raise KeyError(f"{_WHO}: the state_dict has no {key!r}; is it a torchvision ViT's? It has "
                           f"{', '.join(sorted(state_dict)[:6])} ...")
    width, _, patch, _ = np.shape(state_dict["conv_proj.weight"])
    tokens = np.shape(state_dict["encoder.pos_embedding"])[1] - 1
    layers = len({k.split(".")[2] for k in state_dict if k.startswith("encoder.layers.")})
    mlp = np.shape(state_dict["encoder.layers.encoder_layer_0.mlp.0.weight"])[0]
    return int(round(tokens ** 0.5)) * patch, patch, layers, width, mlp, np.shape(state_dict["heads.head.weight"])[0]


def convert(state_dict: Mapping, *, num_heads: int = 12) -> tuple[PyTree, PyTree]:
    """(params, state) of vision_transformer(...) with the sizes read off torchvision's state_dict
    (names -> arrays; CPU tensors are read with np.asarray); heads are not stored: 12 for ViT-B/16.
    Every tensor must be used; shapes are checked against the fnn model's."""
    image, patch, layers, width, mlp, classes = _config(state_dict)
    model = vision_transformer(image, patch, layers, num_heads, width, mlp, classes)
    expected, state = jax.eval_shape(lambda k: model.init(k, (image, image, 3))[1:], jax.random.PRNGKey(0))
    used: set = set()
    table = {path: _layer_params(torch_prefix(path), p.keys(), state_dict, used)
             for path, p in tree_by_path(model, expected).items() if p}
    extra = sorted(set(state_dict) - used)
    if extra:
        raise ValueError(f"{_WHO}: the state_dict has tensors {model.name} has no place for: {', '.join(extra[:8])}")

    def leaf(path, want):
        layer, key = path.rsplit("/", 1)
        got = table[layer][key]
        if got.shape != want.shape:
            raise ValueError(f"{_WHO}: {torch_prefix(layer)!r} gives {key} of shape {got.shape}, fnn's "
                             f"{path} is {want.shape}")
        return got
    return jax.tree.map(leaf, map_paths(model, lambda path: path)(expected), expected), state   # state: no arrays
