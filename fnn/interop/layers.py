"""Per-layer PyTorch weights in and out, by transposes only (fnn never imports torch).

A state_dict goes in as a mapping of names to arrays (NumPy arrays, or CPU tensors,
which `np.asarray` reads); what comes back for PyTorch is a dict of NumPy arrays that
`module.load_state_dict({k: torch.from_numpy(v) ...})` takes.

    nn.Linear        linear_from_torch / linear_to_torch          {"W": weight.T, "b": bias}
    nn.Conv2d        conv2d_from_torch / conv2d_to_torch          W (kh, kw, in, out) = weight (out, in, kh, kw)
    nn.BatchNorm2d   batchnorm_from_torch -> (params, state) / batchnorm_to_torch(params, state)
    nn.Embedding     embedding_from_torch / embedding_to_torch    {"W": weight}
    nn.RNN/LSTM/GRU  rnn_from_torch / rnn_to_torch                one entry per layer, for `serial`
    nn.MultiheadAttention  multihead_attention_from_torch / _to_torch  in_proj split in q, k, v; transposed

Recurrent weights: W_x = weight_ih_l{k}.T, W_h = weight_hh_l{k}.T, b_x = bias_ih_l{k},
b_h = bias_hh_l{k}; a bidirectional layer is {"forward": ..., "backward": ...} (the
`_reverse` tensors), as `Bidirectional` holds them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np

__all__ = [
    "batchnorm_from_torch", "batchnorm_to_torch", "conv2d_from_torch", "conv2d_to_torch",
    "embedding_from_torch", "embedding_to_torch", "linear_from_torch", "linear_to_torch",
    "multihead_attention_from_torch", "multihead_attention_to_torch", "rnn_from_torch", "rnn_to_torch",
]


def _get(name: str, state_dict: Mapping, key: str, ndim: int) -> np.ndarray:
    if key not in state_dict:
        raise KeyError(f"{name}: expected a state_dict with {key!r}, got keys {sorted(state_dict)}")
    value = np.asarray(state_dict[key])
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected {key!r} with {ndim} axes, got shape {value.shape}")
    return value


def _out(tree):
    return {k: jnp.asarray(v) for k, v in tree.items()}


def linear_from_torch(state_dict: Mapping) -> dict:
    """nn.Linear (weight (out, in), bias (out,)) -> Dense params {"W": (in, out), "b": (out,)}."""
    params = {"W": _get("linear_from_torch", state_dict, "weight", 2).T}
    if "bias" in state_dict:
        params["b"] = _get("linear_from_torch", state_dict, "bias", 1)
    return _out(params)


def linear_to_torch(params: Mapping) -> dict:
    """Dense params -> nn.Linear's state_dict: weight = W.T, bias = b."""
    out = {"weight": np.asarray(params["W"]).T}
    if "b" in params:
        out["bias"] = np.asarray(params["b"])
    return out


def conv2d_from_torch(state_dict: Mapping) -> dict:
    """nn.Conv2d (weight (out, in/groups, kh, kw)) -> Conv2D params {"W": (kh, kw, in/groups, out), "b"}."""
    params = {"W": _get("conv2d_from_torch", state_dict, "weight", 4).transpose(2, 3, 1, 0)}
    if "bias" in state_dict:
        params["b"] = _get("conv2d_from_torch", state_dict, "bias", 1)
    return _out(params)


def conv2d_to_torch(params: Mapping) -> dict:
    """Conv2D params -> nn.Conv2d's state_dict (weight (out, in/groups, kh, kw))."""
    out = {"weight": np.asarray(params["W"]).transpose(3, 2, 0, 1)}
    if "b" in params:
        out["bias"] = np.asarray(params["b"])
    return out


def batchnorm_from_torch(state_dict: Mapping) -> tuple[dict, dict]:
    """nn.BatchNorm2d -> BatchNorm (params {"gamma", "beta"}, state {"mean", "var"})."""
    get = lambda key: _get("batchnorm_from_torch", state_dict, key, 1)      # noqa: E731
    return (_out({"gamma": get("weight"), "beta": get("bias")}),
            _out({"mean": get("running_mean"), "var": get("running_var")}))


def batchnorm_to_torch(params: Mapping, state: Mapping) -> dict:
    """BatchNorm params and state -> nn.BatchNorm2d's state_dict (num_batches_tracked = 0)."""
    return {"weight": np.asarray(params["gamma"]), "bias": np.asarray(params["beta"]),
            "running_mean": np.asarray(state["mean"]), "running_var": np.asarray(state["var"]),
            "num_batches_tracked": np.zeros((), np.int64)}


def embedding_from_torch(state_dict: Mapping) -> dict:
    """nn.Embedding (weight (vocab, dim)) -> Embedding params {"W": (vocab, dim)}, unchanged."""
    return _out({"W": _get("embedding_from_torch", state_dict, "weight", 2)})


def embedding_to_torch(params: Mapping) -> dict:
    """Embedding params -> nn.Embedding's state_dict."""
    return {"weight": np.asarray(params["W"])}


def _rnn_direction(state_dict, k, suffix):
    name = "rnn_from_torch"
    return _out({"W_x": _get(name, state_dict, f"weight_ih_l{k}{suffix}", 2).T,
                 "W_h": _get(name, state_dict, f"weight_hh_l{k}{suffix}", 2).T,
                 "b_x": _get(name, state_dict, f"bias_ih_l{k}{suffix}", 1),
                 "b_h": _get(name, state_dict, f"bias_hh_l{k}{suffix}", 1)})


def rnn_from_torch(state_dict: Mapping) -> tuple:
    """nn.RNN / nn.LSTM / nn.GRU (bias=True, any num_layers, bidirectional or not) -> a tuple
    with one params entry per layer: {"W_x", "W_h", "b_x", "b_h"}, or {"forward", "backward"}
    for a bidirectional layer; the params of `serial(layer_1, ..., layer_n)`."""
    keys = sorted(state_dict)
    if any(k.startswith("weight_hr") for k in keys):
        raise ValueError("rnn_from_torch: LSTM with proj_size is not supported (weight_hr_l* found)")
    layers = sorted({int(m.group(1)) for k in keys if (m := re.fullmatch(r"weight_ih_l(\d+)(_reverse)?", k))})
    if not layers:
        raise KeyError(f"rnn_from_torch: expected weight_ih_l0 and friends, got keys {keys}")
    out = []
    for k in layers:
        forward = _rnn_direction(state_dict, k, "")
        if f"weight_ih_l{k}_reverse" in state_dict:
            out.append({"forward": forward, "backward": _rnn_direction(state_dict, k, "_reverse")})
        else:
            out.append(forward)
    return tuple(out)


def rnn_to_torch(params) -> dict:
    """The inverse of `rnn_from_torch`: a tuple of per-layer params (or one layer's params)
    -> the state_dict of nn.RNN / nn.LSTM / nn.GRU."""
    layers = params if isinstance(params, (tuple, list)) else (params,)
    out = {}
    for k, layer in enumerate(layers):
        parts = [(layer["forward"], ""), (layer["backward"], "_reverse")] if "forward" in layer else [(layer, "")]
        for p, suffix in parts:
            out[f"weight_ih_l{k}{suffix}"] = np.asarray(p["W_x"]).T
            out[f"weight_hh_l{k}{suffix}"] = np.asarray(p["W_h"]).T
            out[f"bias_ih_l{k}{suffix}"] = np.asarray(p["b_x"])
            out[f"bias_hh_l{k}{suffix}"] = np.asarray(p["b_h"])
    return out


def multihead_attention_from_torch(state_dict: Mapping) -> dict:
    """nn.MultiheadAttention (in_proj_weight (3E, E), in_proj_bias (3E,), out_proj.weight, .bias; or
    q/k/v_proj_weight when kdim/vdim differ) -> MultiHeadAttention params: W_q = in_proj_weight[:E].T, ..."""
    name = "multihead_attention_from_torch"
    if "in_proj_weight" in state_dict:
        w = _get(name, state_dict, "in_proj_weight", 2)
        weights = np.split(w, 3, axis=0)
    else:
        weights = [_get(name, state_dict, f"{n}_proj_weight", 2) for n in "qkv"]
    e = weights[0].shape[0]
    bias = np.asarray(state_dict.get("in_proj_bias", np.zeros(3 * e, weights[0].dtype)))
    params = {}
    for i, n in enumerate("qkv"):
        params[f"W_{n}"], params[f"b_{n}"] = weights[i].T, bias[i * e:(i + 1) * e]
    params["W_o"] = _get(name, state_dict, "out_proj.weight", 2).T
    params["b_o"] = np.asarray(state_dict.get("out_proj.bias", np.zeros(params["W_o"].shape[1], weights[0].dtype)))
    return _out(params)


def multihead_attention_to_torch(params: Mapping) -> dict:
    """MultiHeadAttention params -> nn.MultiheadAttention's state_dict (packed in_proj when the
    query, key and value widths agree, as PyTorch packs them then)."""
    w = [np.asarray(params[f"W_{n}"]).T for n in "qkv"]
    out = {"in_proj_bias": np.concatenate([np.asarray(params[f"b_{n}"]) for n in "qkv"]),
           "out_proj.weight": np.asarray(params["W_o"]).T, "out_proj.bias": np.asarray(params["b_o"])}
    if len({a.shape for a in w}) == 1:
        out["in_proj_weight"] = np.concatenate(w, axis=0)
    else:
        out.update({f"{n}_proj_weight": a for n, a in zip("qkv", w)})
    return out
