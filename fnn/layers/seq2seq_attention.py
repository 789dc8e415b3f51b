"""Attention over an encoder's memory, for sequence-to-sequence decoders, with hand-derived backward
passes: additive (Bahdanau) and Luong's "general" attention. Inputs are (query, memory) or (query,
memory, mask); a boolean mask (True = may attend) broadcasts to (B, T_q, T_k), and a query row with
every key masked gets weights 0 and context 0.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..activations import softmax
from ..core import Layer
from ..gradcheck import Case
from ..initializers import Initializer, glorot_uniform
from .attention import (
    _PAD,
    _affine_backward,
    _check_features,
    _example_shapes,
    _full_mask,
    _masked_softmax,
    _split_inputs,
    _with_mask,
)


def _memory_weights(name, s, mask):
    """P = softmax_k(s) over the allowed keys, s (B, T_q, T_k); mask broadcasts to (B, T_q, T_k)."""
    full = _full_mask(name, None if mask is None else jnp.asarray(mask)[:, None], False, (s.shape[0], 1, *s.shape[1:]))
    return _masked_softmax(s, None if full is None else full[:, 0])


def _memory_weights_backward(p, m, dy, return_weights: bool):
    """Through c = P m and P = softmax(s): (dS, P^T dc), from dy = dc or (dc, dP_out)."""
    dc, dweights = dy if return_weights else (dy, None)
    dp = jnp.einsum("bqd,bkd->bqk", dc, m)
    ds = softmax.backward(None, p, dp if dweights is None else dp + dweights)
    return ds, jnp.einsum("bqk,bqd->bkd", p, dc)


def AdditiveAttention(attn_dim: int, *, return_weights: bool = False, W_init: Initializer = glorot_uniform,
                      name: str = "AdditiveAttention") -> Layer:
    """Bahdanau attention: s_qk = v . tanh(q_t W_q + m_k W_k),  P = softmax_k(s + mask),  c_t = sum_k P_qk m_k.

    Input: (query, memory) or (query, memory, mask); mask broadcasts to (B, T_q, T_k).
    Shapes: query (B, T_q, D_q), memory (B, T_k, D_m) -> context (B, T_q, D_m) (and P (B, T_q, T_k)
        with return_weights);  W_q (D_q, A), W_k (D_m, A), v (A,).
    Backward: E = tanh(...) (B, T_q, T_k, A);  dm = P^T dc + (sum_q dE) W_k^T,  dP = dc m^T (+ dP_out),
        dS = P * (dP - rowsum(dP * P)),  dv = sum dS E,  dE = dS v (1 - E^2),
        dW_q = q^T sum_k dE,  dq = (sum_k dE) W_q^T,  dW_k = m^T sum_q dE.
    """
    if isinstance(attn_dim, bool) or not isinstance(attn_dim, int) or attn_dim < 1:
        raise ValueError(f"{name}: attn_dim must be a positive int, got {attn_dim!r}")

    def init(key, in_shape):
        (t_q, d_q), (_, d_m) = _example_shapes(name, in_shape, True)
        k1, k2, k3 = jax.random.split(key, 3)
        params = {"W_q": W_init(k1, (d_q, attn_dim), jnp.float32), "W_k": W_init(k2, (d_m, attn_dim), jnp.float32),
                  "v": jax.random.normal(k3, (attn_dim,), jnp.float32) / math.sqrt(attn_dim)}
        return (t_q, d_m), params, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        q, m, mask = _split_inputs(name, x, True)
        _check_features(name, ((q, params["W_q"]), (m, params["W_k"])))
        e = jnp.tanh((q @ params["W_q"])[:, :, None] + (m @ params["W_k"])[:, None])
        p = _memory_weights(name, e @ params["v"], mask)
        c = jnp.einsum("bqk,bkd->bqd", p, m)
        return ((c, p) if return_weights else c), state, (q, m, e, p, mask)

    def backward(params, cache, dy):
        q, m, e, p, mask = cache
        ds, dm_c = _memory_weights_backward(p, m, dy, return_weights)
        de = ds[..., None] * params["v"] * (1 - e * e)
        dW_q, _, dq = _affine_backward(q, de.sum(axis=2), params["W_q"])
        dW_k, _, dm_k = _affine_backward(m, de.sum(axis=1), params["W_k"])
        grads = {"W_q": dW_q, "W_k": dW_k, "v": jnp.einsum("bqk,bqka->a", ds, e)}
        return grads, (dq, dm_c + dm_k, *(() if mask is None else (None,)))

    return Layer(init, forward, backward, name)


def LuongAttention(*, return_weights: bool = False, W_init: Initializer = glorot_uniform,
                   name: str = "LuongAttention") -> Layer:
    """Luong's "general" attention: s_qk = q_t^T W m_k,  P = softmax_k(s + mask),  c_t = sum_k P_qk m_k.

    Input: (query, memory) or (query, memory, mask); mask broadcasts to (B, T_q, T_k).
    Shapes: query (B, T_q, D_q), memory (B, T_k, D_m) -> context (B, T_q, D_m) (and P (B, T_q, T_k)
        with return_weights);  W (D_q, D_m).
    Backward: U = q W (B, T_q, D_m), s = U m^T;  dP = dc m^T (+ dP_out),  dS = P * (dP - rowsum(dP * P)),
        dU = dS m,  dW = q^T dU,  dq = dU W^T,  dm = P^T dc + dS^T U.
    """
    def init(key, in_shape):
        (t_q, d_q), (_, d_m) = _example_shapes(name, in_shape, True)
        return (t_q, d_m), {"W": W_init(key, (d_q, d_m), jnp.float32)}, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        q, m, mask = _split_inputs(name, x, True)
        _check_features(name, ((q, params["W"]),))
        if m.shape[-1] != params["W"].shape[1]:
            raise ValueError(f"{name}: expected the memory of shape (B, T, {params['W'].shape[1]}), got {m.shape}")
        u = q @ params["W"]
        p = _memory_weights(name, jnp.einsum("bqd,bkd->bqk", u, m), mask)
        c = jnp.einsum("bqk,bkd->bqd", p, m)
        return ((c, p) if return_weights else c), state, (q, m, u, p, mask)

    def backward(params, cache, dy):
        q, m, u, p, mask = cache
        ds, dm_c = _memory_weights_backward(p, m, dy, return_weights)
        dW, _, dq = _affine_backward(q, jnp.einsum("bqk,bkd->bqd", ds, m), params["W"])
        return {"W": dW}, (dq, dm_c + jnp.einsum("bqk,bqd->bkd", ds, u), *(() if mask is None else (None,)))

    return Layer(init, forward, backward, name)


CASES = (
    Case("AdditiveAttention", lambda: AdditiveAttention(4), ((5, 3), (6, 2))),
    Case("AdditiveAttention-mask", lambda: _with_mask(AdditiveAttention(4), _PAD[:, 0]), ((5, 3), (6, 2))),
    Case("AdditiveAttention-T1", lambda: AdditiveAttention(4), ((1, 3), (1, 2))),
    Case("LuongAttention", LuongAttention, ((5, 3), (6, 2))),
    Case("LuongAttention-mask", lambda: _with_mask(LuongAttention(), _PAD[:, 0]), ((5, 3), (6, 2))),
)
