"""What recurrent and attention layers compute inside: an LSTM's or GRU's gates over time, the
attention weights of every head, and attention rollout. Forward passes only: each layer's
forward cache already keeps these arrays for its hand-derived backward.

    LSTM / GRU cache:          (inner, lengths, form, h0), inner = (x, mask, h0, carries, saved),
                               saved = (i, f, g, o) for an LSTM, (r, z, n, h W_hn + b_hn) for a GRU,
                               each (T, B, H)   (fnn.layers._bptt)
    MultiHeadAttention cache:  (x_q, x_kv, q, k, v, P, o, mask), P (B, heads, T_q, T_k)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..core import Layer, PyTree
from ..paths import child_segments, find_layer, layer_paths
from ._trace import forward_caches
from .structure import GATE_NAMES, describe


def layer_cache(model: Layer, path: str, caches: dict):
    """The forward cache of the layer at `path`: recorded by `forward_caches` at a traced path,
    or reached inside a traced unit (a transformer block) through the unit's cache, which holds
    its children's caches first, in children order (then anything of its own, as a block's
    stochastic-depth masks). None when the layout does not say."""
    parts, layers = path.split("/"), layer_paths(model)
    depth = next((d for d in range(len(parts), 0, -1) if "/".join(parts[:d]) in caches), None)
    if depth is None:
        return None
    anchor = "/".join(parts[:depth])
    cache = caches[anchor]
    for segment in parts[depth:]:
        segments = child_segments(layers[anchor].children)
        if not isinstance(cache, tuple) or len(cache) < len(segments) or segment not in segments:
            return None
        cache, anchor = cache[segments.index(segment)], f"{anchor}/{segment}"
    return cache


def _full_path(model: Layer, layer: str) -> str:
    """`layer`'s path with the root's name (which may be left off); unknown paths raise, listing them.
    A path inside a traced unit (a Bidirectional) is fine here: its cache is reached by `layer_cache`."""
    find_layer(model, layer)
    return layer if layer in layer_paths(model) else f"{model.name}/{layer}"


def _gates_of(cache, gates: int):
    """[each gate (B, T, H)] from a recurrent layer's cache, or None for another layout. The
    cache keeps the gates per block of the batch (`batch_blocks`), each (T, B / blocks, H)."""
    try:
        blocks = cache[0][4]
    except (TypeError, IndexError):
        return None
    names = GATE_NAMES.get(gates, ())
    if not names or not isinstance(blocks, tuple) or not blocks or any(
            not isinstance(saved, tuple) or len(saved) < len(names)
            or any(getattr(a, "ndim", 0) != 3 for a in saved[:len(names)]) for saved in blocks):
        return None
    return [jnp.swapaxes(jnp.concatenate(gate, axis=1), 0, 1) for gate in zip(*(b[:len(names)] for b in blocks))]


def _weights_of(cache):
    """P (B, heads, T_q, T_k) from a MultiHeadAttention cache, or None (the blockwise pass keeps
    only the row log-sum-exp)."""
    if not isinstance(cache, tuple) or len(cache) != 8:
        return None
    q, k, p = cache[2], cache[3], cache[5]
    if getattr(q, "ndim", 0) != 4 or getattr(p, "ndim", 0) != 4:
        return None
    return p if p.shape == (q.shape[0], q.shape[2], q.shape[1], k.shape[1]) else None


@functools.partial(jax.jit, static_argnames=("model", "paths", "gates"))
def _from_caches(model, paths, gates, params, state, x):
    _, caches = forward_caches(model, params, state, x)
    found = [layer_cache(model, p, caches) for p in paths]
    return [_gates_of(c, gates) if gates else _weights_of(c) for c in found]


def gate_activations(model: Layer, params: PyTree, state: PyTree, x, *, layer: str | None = None) -> dict:
    """The gates of an LSTM or GRU layer (`layer`, by default the first) on x, one forward pass:
    LSTM {"input", "forget", "candidate", "output"} (i, f, g, o), GRU {"reset", "update",
    "candidate"} (r, z, n), with the equations of `fnn.layers.LSTM` / `GRU`.

    Shapes: x (B, *in_shape) -> each gate (B, T, H).
    """
    found = describe(model, params, state, jnp.asarray(x)).recurrent
    path = _full_path(model, layer) if layer else next(iter(found), None)
    if path not in found or found[path] not in GATE_NAMES:
        kinds = {1: "a simple RNN, which has no gates"}
        what = f"{path!r} is {kinds.get(found.get(path), 'not an LSTM or GRU layer')}" if path \
            else f"model {model.name!r} has no recurrent layer"
        raise ValueError(f"gate_activations: {what}")
    gates = _from_caches(model, (path,), found[path], params, state, jnp.asarray(x))[0]
    if gates is None:
        raise ValueError(f"gate_activations: the forward cache of {path!r} does not keep the gates")
    return dict(zip(GATE_NAMES[found[path]], gates))


def attention_weights(model: Layer, params: PyTree, state: PyTree, x) -> dict:
    """{path: P (B, heads, T_q, T_k)} for every attention layer of `model` on x (input side
    first), from one forward pass; a layer whose forward keeps no weights (impl="blockwise")
    is left out."""
    paths = tuple(describe(model, params, state, jnp.asarray(x)).attention)
    found = _from_caches(model, paths, 0, params, state, jnp.asarray(x)) if paths else []
    return {p: w for p, w in zip(paths, found) if w is not None}


def attention_rollout(weights, *, residual: float = 0.5) -> jax.Array:
    """Attention rollout (Abnar & Zuidema 2020): A_l = the mean over heads of layer l's weights,
    A^_l = residual I + (1 - residual) A_l with rows renormalised, R = A^_L ... A^_1:
    R[i, j] is how much token j of the input flows into token i of the last layer.

    Shapes: weights, a sequence of (B, heads, T, T), input side first -> R (B, T, T).
    """
    weights = list(weights)
    if not weights:
        raise ValueError("attention_rollout: no attention weights given")
    rollout = None
    for p in weights:
        if p.ndim != 4 or p.shape[-1] != p.shape[-2]:
            raise ValueError(f"attention_rollout: expected self-attention weights (B, heads, T, T), got {p.shape}")
        a = residual * jnp.eye(p.shape[-1], dtype=p.dtype) + (1 - residual) * p.mean(axis=1)
        a = a / a.sum(axis=-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout
    return rollout
