"""Attention with hand-derived backward passes: dot-product (plain and scaled) and multi-head
(additive and Luong attention over an encoder's memory: `fnn.layers.seq2seq_attention`). Arrays
are laid out as `jax.nn.dot_product_attention`'s: q (B, T_q, H, D), k (B, T_k, H, D),
v (B, T_k, H, D_v), weights (B, H, T_q, T_k).

A boolean `mask` (True = may attend) broadcasts to (B, H, T_q, T_k); `causal=True` lets
query i see keys j <= i + (T_k - T_q) (the last T_q positions of a longer key sequence,
as in incremental decoding). A row with every key masked gets weights 0 and output 0.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..activations import softmax
from ..core import Layer, check_example_shape, check_input, is_multi_shape
from ..gradcheck import Case, FunctionCase
from ..initializers import Initializer, glorot_uniform, zeros
from .blockwise import BlockwiseAttention, _heads_first, check_qkv


def _full_mask(name, mask, causal, shape):
    """The (B, H, T_q, T_k) boolean mask, or None when every key may be seen."""
    b, h, tq, tk = shape
    if mask is not None:
        try:
            np.broadcast_shapes(np.shape(mask), shape)
        except ValueError:
            raise ValueError(f"{name}: mask of shape {np.shape(mask)} does not broadcast to "
                             f"(B, H, T_q, T_k) = {shape}") from None
        mask = jnp.broadcast_to(jnp.asarray(mask, bool), shape)
    if causal:
        lower = jnp.tril(jnp.ones((tq, tk), bool), k=tk - tq)
        mask = lower if mask is None else mask & lower
    return mask


def _masked_softmax(s, mask):
    """P = softmax(s) over the last axis on the allowed keys; 0 on masked keys and on rows with none."""
    if mask is None:
        return jax.nn.softmax(s, axis=-1)
    s = jnp.where(mask, s, jnp.finfo(s.dtype).min)
    e = jnp.where(mask, jnp.exp(s - s.max(axis=-1, keepdims=True)), 0)
    z = e.sum(axis=-1, keepdims=True)
    return e / jnp.where(z > 0, z, 1)


class AttentionFunction(NamedTuple):
    """out = P V,  P = softmax(scale * Q K^T + mask)  (per batch and head); a record with its backward.

    Shapes: q (B, T_q, H, D), k (B, T_k, H, D), v (B, T_k, H, D_v) -> out (B, T_q, H, D_v),
        weights P (B, H, T_q, T_k).  scale: None means 1 / sqrt(D).  heads_first=True: q, k, v, out
        and their gradients are (B, H, T, D) (PyTorch's F.scaled_dot_product_attention layout), with
        no transposes in or out: `scaled_dot_product_attention._replace(heads_first=True)`.
    Backward: `.backward(q, k, v, weights, dout, dweights=None, out=None) -> (dq, dk, dv)`,
        dV = P^T dO     dP = dO V^T (+ dweights)     dS = P * (dP - rowsum(dP * P))
        dQ = scale dS K     dK = scale dS^T Q;   masked keys get exactly zero gradient.
        Given the forward's `out`, rowsum(dO V^T * P) = rowsum(dO * out) (FlashAttention's D_i)
        is taken over D instead of T_k: one pass over the T x T arrays fewer.
    """
    name: str
    scale: float | None
    heads_first: bool = False

    def _scale(self, q):
        return jnp.asarray(1.0 / np.sqrt(q.shape[-1]) if self.scale is None else self.scale, q.dtype)

    def _layout(self, a):
        """(B, T, H, D) <-> (B, H, T, D) unless the arrays are heads-first already."""
        return a if self.heads_first or a is None else _heads_first(a)

    def __call__(self, q, k, v, *, mask=None, causal=False):
        check_qkv(self.name, q, k, v, self.heads_first)
        q, k, v = self._layout(q * self._scale(q)), self._layout(k), self._layout(v)
        s = jnp.einsum("bhqd,bhkd->bhqk", q, k)
        p = _masked_softmax(s, _full_mask(self.name, mask, causal, s.shape))
        return self._layout(jnp.einsum("bhqk,bhkd->bhqd", p, v)), p

    def backward(self, q, k, v, weights, dout, dweights=None, out=None):
        p, scale = weights, self._scale(q)
        q, k, v, do, out = (self._layout(a) for a in (q * scale, k, v, dout, out))
        dv = jnp.einsum("bhqk,bhqd->bhkd", p, do)
        dp = jnp.einsum("bhqd,bhkd->bhqk", do, v)
        dp = dp if dweights is None else dp + dweights
        if out is None:
            ds = softmax.backward(None, p, dp)
        else:
            rowsum = jnp.sum(do * out, axis=-1, keepdims=True)
            ds = p * (dp - (rowsum if dweights is None else rowsum + jnp.sum(dweights * p, -1, keepdims=True)))
        dq, dk = jnp.einsum("bhqk,bhkd->bhqd", ds, k) * scale, jnp.einsum("bhqk,bhqd->bhkd", ds, q)
        return self._layout(dq), self._layout(dk), self._layout(dv)


dot_product_attention = AttentionFunction("dot_product_attention", 1.0)
scaled_dot_product_attention = AttentionFunction("scaled_dot_product_attention", None)


def _split_inputs(name, x, cross):
    """(query, keys/values, mask) from x: self-attention takes x or (x, mask); cross (q, kv[, mask])."""
    parts = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    want = (2, 3) if cross else (1, 2)
    if len(parts) not in want:
        form = "(query, keys_values) or (query, keys_values, mask)" if cross else "x or (x, mask)"
        raise TypeError(f"{name}: expected {form}, got {len(parts)} inputs")
    q, rest = parts[0], parts[1:]
    kv = rest[0] if cross else q
    mask = rest[-1] if len(rest) == (2 if cross else 1) else None
    for a, what in ((q, "query"), (kv, "keys/values")):
        check_input(name, a)
        if a.ndim != 3:
            raise ValueError(f"{name}: expected the {what} of shape (B, T, E), got {a.shape}")
    return q, kv, mask


def _example_shapes(name, in_shape, cross):
    shapes = tuple(in_shape) if is_multi_shape(in_shape) else (in_shape,)
    for s in shapes[:2 if cross else 1]:
        check_example_shape(name, s, "(T, E)", rank=2)
    return shapes[0], (shapes[1] if cross else shapes[0])


def _check_features(name, pairs):
    for a, W in pairs:
        if a.shape[-1] != W.shape[0]:
            raise ValueError(f"{name}: expected inputs of shape (B, T, {W.shape[0]}), got {a.shape}")


def _split_heads(a, heads):
    return a.reshape(*a.shape[:-1], heads, a.shape[-1] // heads)


def _affine_backward(a, da, W):
    """For y = a @ W + b: dW = a^T dy, db = sum dy, da = dy W^T (sums over every leading axis)."""
    a2, da2 = a.reshape(-1, a.shape[-1]), da.reshape(-1, da.shape[-1])
    return a2.T @ da2, da2.sum(axis=0), da @ W.T


def _stacked(params, kind):
    """[W_q W_k W_v] (E, 3 H D) for kind "W", [b_q b_k b_v] (3 H D,) for "b"."""
    return jnp.concatenate([params[f"{kind}_{n}"] for n in "qkv"], axis=-1)


def _qkv(params, x_q, x_kv, cross, heads):
    """Q, K, V split into heads. Self-attention: one x [W_q W_k W_v] + [b_q b_k b_v] matmul, (E, 3 H D)."""
    if cross:
        return tuple(_split_heads(a @ params[f"W_{n}"] + params[f"b_{n}"], heads)
                     for a, n in ((x_q, "q"), (x_kv, "k"), (x_kv, "v")))
    projected = x_q @ _stacked(params, "W") + _stacked(params, "b")
    return tuple(_split_heads(part, heads) for part in jnp.split(projected, 3, axis=-1))


def _qkv_backward(params, x_q, x_kv, dq, dk, dv, cross):
    """(dW_q .. db_v, dx_q, dx_kv) of `_qkv`: dW_n = x_n^T dN, db_n = sum dN, dx = sum_n dN W_n^T. Self-
    attention: dW = x^T [dQ dK dV] and dx = [dQ dK dV] [W_q W_k W_v]^T, one matmul each (dx_kv None)."""
    dq, dk, dv = (d.reshape(*d.shape[:2], -1) for d in (dq, dk, dv))
    if cross:
        grads, dx = {}, {}
        for n, a, da in (("q", x_q, dq), ("k", x_kv, dk), ("v", x_kv, dv)):
            grads[f"W_{n}"], grads[f"b_{n}"], dx[n] = _affine_backward(a, da, params[f"W_{n}"])
        return grads, dx["q"], dx["k"] + dx["v"]
    dW, db, dx = _affine_backward(x_q, jnp.concatenate([dq, dk, dv], axis=-1), _stacked(params, "W"))
    grads = {}
    for n, dW_n, db_n in zip("qkv", jnp.split(dW, 3, axis=1), jnp.split(db, 3)):
        grads[f"W_{n}"], grads[f"b_{n}"] = dW_n, db_n
    return grads, dx, None


def _attention_core(name, impl, block_size, return_weights):
    """(attend, attend_backward) for MultiHeadAttention: the plain product keeps the weights P, the
    blockwise one keeps the row log-sum-exp and recomputes P block by block in the backward."""
    if impl == "plain":
        plain = scaled_dot_product_attention._replace(name=name)
        return (lambda q, k, v, mask, causal: plain(q, k, v, mask=mask, causal=causal),
                lambda q, k, v, p, do, dp, out, mask, causal: plain.backward(q, k, v, p, do, dp, out))
    if impl != "blockwise":
        raise ValueError(f"{name}: impl must be 'plain' or 'blockwise', got {impl!r}")
    if return_weights or isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"{name}: impl='blockwise' needs a positive int block_size and return_weights=False "
                         f"(it never forms the weights), got block_size={block_size!r}, "
                         f"return_weights={return_weights!r}")
    blockwise = BlockwiseAttention(name, block_size)
    return (lambda q, k, v, mask, causal: blockwise(q, k, v, mask=mask, causal=causal),
            lambda q, k, v, lse, do, _, out, mask, causal: blockwise.backward(q, k, v, lse, do, out, mask=mask,
                                                                               causal=causal))


def MultiHeadAttention(num_heads: int, head_dim: int, out_dim: int | None = None, *, cross: bool = False,
                       causal: bool = False, return_weights: bool = False, impl: str = "plain",
                       block_size: int = 128, W_init: Initializer = glorot_uniform,
                       name: str = "MultiHeadAttention") -> Layer:
    """y = concat_h(softmax(Q_h K_h^T / sqrt(D) + mask) V_h) W_o + b_o, with Q = x_q W_q + b_q,
    K = x_kv W_k + b_k, V = x_kv W_v + b_v (PyTorch's nn.MultiheadAttention, transposed).

    Input: self-attention x or (x, mask); cross=True: (x_q, x_kv) or (x_q, x_kv, mask);
        mask broadcasts to (B, H, T_q, T_k), True = may attend.  return_weights: y is (out, P).
        impl="blockwise": `BlockwiseAttention` over keys in blocks of block_size (memory O(T), not O(T^2)).
    Shapes: x_q (B, T_q, E), x_kv (B, T_k, E_kv) -> (B, T_q, out_dim or E);  W_q (E, H*D),
        W_k, W_v (E_kv, H*D), W_o (H*D, out_dim or E), biases (H*D,) and (out_dim or E,).
    Backward: dW_o = O^T dy, dO = dy W_o^T; dQ, dK, dV from `scaled_dot_product_attention.backward`;
        dW_* = x^T d*, dx_q = dQ W_q^T, dx_kv = dK W_k^T + dV W_v^T (self: dx = the sum of all three,
        and the projections run as one matmul with [W_q W_k W_v]).
    """
    for arg, value in (("num_heads", num_heads), ("head_dim", head_dim), ("out_dim", out_dim or 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    inner, (attend, attend_backward) = num_heads * head_dim, _attention_core(name, impl, block_size, return_weights)

    def init(key, in_shape):
        (t_q, e_q), (_, e_kv) = _example_shapes(name, in_shape, cross)
        e_out = out_dim or e_q
        keys = jax.random.split(key, 4)
        params = {"W_q": W_init(keys[0], (e_q, inner), jnp.float32), "b_q": zeros(None, (inner,), jnp.float32),
                  "W_k": W_init(keys[1], (e_kv, inner), jnp.float32), "b_k": zeros(None, (inner,), jnp.float32),
                  "W_v": W_init(keys[2], (e_kv, inner), jnp.float32), "b_v": zeros(None, (inner,), jnp.float32),
                  "W_o": W_init(keys[3], (inner, e_out), jnp.float32), "b_o": zeros(None, (e_out,), jnp.float32)}
        return (t_q, e_out), params, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        x_q, x_kv, mask = _split_inputs(name, x, cross)
        _check_features(name, ((x_q, params["W_q"]), (x_kv, params["W_k"])))
        q, k, v = _qkv(params, x_q, x_kv, cross, num_heads)
        out, p = attend(q, k, v, mask, causal)
        o = out.reshape(*out.shape[:2], inner)
        y = o @ params["W_o"] + params["b_o"]
        return ((y, p) if return_weights else y), state, (x_q, x_kv, q, k, v, p, o, mask)

    def backward(params, cache, dy):
        x_q, x_kv, q, k, v, p, o, mask = cache
        dy, dweights = dy if return_weights else (dy, None)
        dW_o, db_o, do = _affine_backward(o, dy, params["W_o"])
        dq, dk, dv = attend_backward(q, k, v, p, _split_heads(do, num_heads), dweights, _split_heads(o, num_heads),
                                     mask, causal)
        grads, dx_q, dx_kv = _qkv_backward(params, x_q, x_kv, dq, dk, dv, cross)
        grads.update(W_o=dW_o, b_o=db_o)
        if not cross:
            return grads, (dx_q if mask is None else (dx_q, None))
        return grads, (dx_q, dx_kv, *(() if mask is None else (None,)))

    return Layer(init, forward, backward, name)


class DecodeCache(NamedTuple):
    """Keys and values of the positions decoded so far, for `decode_step` (incremental decoding)."""
    k: jax.Array        # (B, T_max, H, D)
    v: jax.Array        # (B, T_max, H, D)
    length: jax.Array   # (), int32: positions filled


def decode_cache(batch: int, max_len: int, num_heads: int, head_dim: int, dtype=jnp.float32) -> DecodeCache:
    """An empty cache for `max_len` positions of a causal self-attention layer."""
    zeros_kv = jnp.zeros((batch, max_len, num_heads, head_dim), dtype)
    return DecodeCache(zeros_kv, zeros_kv, jnp.zeros((), jnp.int32))


def decode_cache_for(attention: Layer, params, batch: int, max_len: int, dtype=jnp.float32) -> DecodeCache:
    """An empty `decode_cache` for the causal self-`MultiHeadAttention` layer `attention` with
    `params`: its heads and head size are read from the shapes of its forward (no compute)."""
    x = jax.ShapeDtypeStruct((1, 1, params["W_q"].shape[0]), params["W_q"].dtype)
    q = jax.eval_shape(lambda x: attention.forward(params, (), x)[2], x)[2]       # (1, 1, H, D)
    return decode_cache(batch, max_len, q.shape[2], q.shape[3], dtype)


def decode_step(params, cache: DecodeCache, x_t: jax.Array) -> tuple[jax.Array, DecodeCache]:
    """One step of causal self-`MultiHeadAttention` (its `params`) for generation: project x_t
    (B, 1, E), append its key and value to `cache`, attend over the positions so far.
    Equals the full causal layer's output at that position (tested); O(T) per step, not O(T^2)."""
    q, k, v = _qkv(params, x_t, x_t, False, cache.k.shape[2])
    zero = jnp.zeros((), jnp.int32)
    at = (zero, cache.length, zero, zero)
    cache = DecodeCache(jax.lax.dynamic_update_slice(cache.k, k.astype(cache.k.dtype), at),
                        jax.lax.dynamic_update_slice(cache.v, v.astype(cache.v.dtype), at), cache.length + 1)
    seen = (jnp.arange(cache.k.shape[1], dtype=jnp.int32) < cache.length)[None, None, None, :]
    out, _ = scaled_dot_product_attention(q, cache.k, cache.v, mask=seen)
    return out.reshape(*out.shape[:2], -1) @ params["W_o"] + params["b_o"], cache


def _with_mask(layer: Layer, mask: np.ndarray) -> Layer:
    """`layer` fed a fixed mask after its float inputs (for the gradient-check table)."""
    def forward(params, state, x, *, key=None, train=False):
        parts = tuple(x) if isinstance(x, tuple) else (x,)
        return layer.forward(params, state, (*parts, jnp.asarray(mask)), key=key, train=train)

    def backward(params, cache, dy):
        dparams, dx = layer.backward(params, cache, dy)
        floats = tuple(dx[:-1])                 # the mask's cotangent (None) dropped
        return dparams, floats[0] if len(floats) == 1 else floats

    return layer._replace(forward=forward, backward=backward)


_PAD = np.array([[True] * 4 + [False] * 2, [True] * 6, [True] * 2 + [False] * 4])[:, None, None, :]  # (3,1,1,6)
_ROW_GAPS = np.tril(np.ones((5, 6), bool), 1) | np.eye(5, 6, 4, dtype=bool)         # (T_q=5, T_k=6)

def _function_case(function, t_q, t_k, pass_out=False, **options):
    def make(key):
        shapes = [(2, 2, t, 3) if function.heads_first else (2, t, 2, 3) for t in (t_q, t_k, t_k)]
        q, k, v = (jax.random.normal(kk, s, jnp.float64) for kk, s in zip(jax.random.split(key, 3), shapes))

        def hand_vjp(primals, cotangent):
            out, weights = function(*primals, **options)
            return function.backward(*primals, weights, cotangent, out=out if pass_out else None)
        return (lambda *qkv: function(*qkv, **options)[0]), hand_vjp, (q, k, v)
    return make


CASES = (
    FunctionCase("scaled_dot_product_attention", _function_case(scaled_dot_product_attention, 5, 6)),
    FunctionCase("scaled_dot_product_attention-causal",
                 _function_case(scaled_dot_product_attention, 5, 6, causal=True)),
    FunctionCase("scaled_dot_product_attention-mask-T1",
                 _function_case(scaled_dot_product_attention, 1, 6, mask=_PAD[:2])),
    FunctionCase("dot_product_attention-mask+causal",
                 _function_case(dot_product_attention, 5, 6, mask=_ROW_GAPS, causal=True)),
    FunctionCase("scaled_dot_product_attention-rowsum-from-out",
                 _function_case(scaled_dot_product_attention, 5, 6, pass_out=True)),
    FunctionCase("scaled_dot_product_attention-heads-first-mask+causal-rowsum-from-out",
                 _function_case(scaled_dot_product_attention._replace(heads_first=True), 5, 6, pass_out=True,
                                mask=_ROW_GAPS, causal=True)),
    FunctionCase("dot_product_attention-mask+causal-rowsum-from-out",
                 _function_case(dot_product_attention, 5, 6, pass_out=True, mask=_ROW_GAPS, causal=True)),
    Case("MultiHeadAttention-self", lambda: MultiHeadAttention(2, 3), (6, 4)),
    Case("MultiHeadAttention-self-T1", lambda: MultiHeadAttention(2, 3), (1, 4)),
    Case("MultiHeadAttention-causal", lambda: MultiHeadAttention(2, 3, causal=True), (6, 4)),
    Case("MultiHeadAttention-padding-mask", lambda: _with_mask(MultiHeadAttention(2, 3), _PAD), (6, 4)),
    Case("MultiHeadAttention-cross", lambda: MultiHeadAttention(2, 3, 5, cross=True), ((5, 4), (6, 3))),
    Case("MultiHeadAttention-cross-mask",
         lambda: _with_mask(MultiHeadAttention(2, 3, cross=True), _ROW_GAPS), ((5, 4), (6, 3))),
    Case("MultiHeadAttention-cross-Tq1", lambda: MultiHeadAttention(1, 2, cross=True, causal=True), ((1, 4), (6, 3))),
    Case("MultiHeadAttention-blockwise-causal",
         lambda: MultiHeadAttention(2, 3, causal=True, impl="blockwise", block_size=4), (6, 4)),
    Case("MultiHeadAttention-blockwise-cross-mask",
         lambda: _with_mask(MultiHeadAttention(2, 3, cross=True, impl="blockwise", block_size=4), _ROW_GAPS),
         ((5, 4), (6, 3))),
)
