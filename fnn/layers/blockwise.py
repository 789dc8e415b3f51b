"""Blockwise (FlashAttention-style) scaled dot-product attention: the keys are visited in blocks
with an online softmax, so no T_q x T_k array is ever stored; the backward recomputes each
block's weights from the row log-sum-exp instead of reading them (Dao et al. 2022, Alg. 1-2).
Numerically the same function as `scaled_dot_product_attention`; memory grows linearly in T.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..gradcheck import FunctionCase


def _heads_first(a):
    """(B, T, H, D) <-> (B, H, T, D). The products run heads-first: XLA:CPU's batched matmuls
    and the softmax over T_k are faster on (B, H, ...) arrays than on einsums across (B, T, H, D)."""
    return jnp.swapaxes(a, 1, 2)


def check_qkv(name, q, k, v, heads_first: bool = False):
    """One sentence naming `name` unless q (B, T_q, H, D), k (B, T_k, H, D), v (B, T_k, H, D_v) agree
    ((B, H, T, D) each when heads_first)."""
    t, h = (2, 1) if heads_first else (1, 2)
    if (q.ndim != 4 or k.ndim != 4 or v.ndim != 4 or q.shape[0] != k.shape[0] or k.shape[0] != v.shape[0]
            or k.shape[t] != v.shape[t] or not q.shape[h] == k.shape[h] == v.shape[h] or q.shape[3] != k.shape[3]):
        form = ("q (B, H, T_q, D), k (B, H, T_k, D), v (B, H, T_k, D_v)" if heads_first
                else "q (B, T_q, H, D), k (B, T_k, H, D), v (B, T_k, H, D_v)")
        raise ValueError(f"{name}: expected {form}, got q {q.shape}, k {k.shape}, v {v.shape}")


def _key_blocks(a, block):
    """(B, H, T_k, D) -> (n, B, H, block, D), zero-padded at the end to a whole number of blocks."""
    b, h, t, d = a.shape
    n = -(-t // block)
    a = jnp.pad(a, ((0, 0), (0, 0), (0, n * block - t), (0, 0)))
    return jnp.moveaxis(a.reshape(b, h, n, block, d), 2, 0)


def _mask_blocks(name, mask, shape, block):
    """The user's mask (broadcasting to shape = (B, H, T_q, T_k)) cut along T_k into (n, ..., block)
    pieces; its other broadcast axes stay unbroadcast, so a key-padding mask stays O(T)."""
    if mask is None:
        return None
    mask = jnp.asarray(mask, bool)
    try:
        np.broadcast_shapes(mask.shape, shape)
    except ValueError:
        raise ValueError(f"{name}: mask of shape {mask.shape} does not broadcast to "
                         f"(B, H, T_q, T_k) = {shape}") from None
    mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
    mask = jnp.broadcast_to(mask, (*mask.shape[:3], shape[3]))
    n = -(-shape[3] // block)
    mask = jnp.pad(mask, ((0, 0),) * 3 + ((0, n * block - shape[3]),))
    return jnp.moveaxis(mask.reshape(*mask.shape[:3], n, block), 3, 0)


def _allowed(i, mask_block, causal, t_q, t_k, block):
    """(.., T_q, block) boolean: key j = i*block + c exists, is allowed by the mask and by causality."""
    keys = i * block + jnp.arange(block)
    ok = (keys < t_k)[None, :]
    if causal:
        ok = ok & (keys[None, :] <= jnp.arange(t_q)[:, None] + (t_k - t_q))
    return ok if mask_block is None else ok & mask_block


class BlockwiseAttention(NamedTuple):
    """out = softmax(Q K^T / sqrt(D) + mask) V computed block by block over the keys; returns (out, lse).

    Shapes: q (B, T_q, H, D), k (B, T_k, H, D), v (B, T_k, H, D_v) -> out (B, T_q, H, D_v),
        lse (B, H, T_q) = log sum_j exp(s_ij) (+inf for a row with no allowed key; its out is 0).
    Forward per block: m' = max(m, max_j s_ij), l' = l e^(m - m') + sum_j e^(s_ij - m'),
        acc' = acc e^(m - m') + e^(s - m') V_blk;  out = acc / l.   Memory O(B H T (D + block)).
    Backward: `.backward(q, k, v, lse, dout, out, mask=None, causal=False) -> (dq, dk, dv)`; per block
        P = exp(s - lse), dV_blk = P^T dO, dS = P * (dO V_blk^T - rowsum(dO * out)),
        dQ += scale dS K_blk, dK_blk = scale dS^T Q — the same formulas as the plain backward.
    """
    name: str
    block_size: int

    def _prepare(self, q, k, v, mask):
        check_qkv(self.name, q, k, v)
        scale = jnp.asarray(1.0 / np.sqrt(q.shape[-1]), q.dtype)
        block = min(self.block_size, k.shape[1])
        blocks = (_key_blocks(_heads_first(k), block), _key_blocks(_heads_first(v), block),
                  _mask_blocks(self.name, mask, (q.shape[0], q.shape[2], q.shape[1], k.shape[1]), block))
        return _heads_first(q * scale), scale, block, blocks

    def __call__(self, q, k, v, *, mask=None, causal=False):
        qs, _, block, (kb, vb, mb) = self._prepare(q, k, v, mask)
        t_q, t_k = q.shape[1], k.shape[1]

        def step(carry, xs):
            m, l, acc = carry
            i, k_blk, v_blk, m_blk = xs
            s = jnp.einsum("bhqd,bhkd->bhqk", qs, k_blk)
            s = jnp.where(_allowed(i, m_blk, causal, t_q, t_k, block), s, -jnp.inf)
            m_new = jnp.maximum(m, s.max(-1))
            shift = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
            p, rescale = jnp.exp(s - shift[..., None]), jnp.exp(m - shift)
            return (m_new, l * rescale + p.sum(-1), acc * rescale[..., None] + p @ v_blk), None

        rows = qs.shape[:3]
        init = (jnp.full(rows, -jnp.inf, q.dtype), jnp.zeros(rows, q.dtype), jnp.zeros((*rows, v.shape[-1]), q.dtype))
        (m, l, acc), _ = jax.lax.scan(step, init, (jnp.arange(kb.shape[0]), kb, vb, mb))
        seen = l > 0
        out = jnp.where(seen[..., None], acc / jnp.where(seen, l, 1)[..., None], 0)
        lse = jnp.where(seen, jnp.where(jnp.isfinite(m), m, 0) + jnp.log(jnp.where(seen, l, 1)), jnp.inf)
        return _heads_first(out), lse

    def backward(self, q, k, v, lse, dout, out, *, mask=None, causal=False):
        qs, scale, block, (kb, vb, mb) = self._prepare(q, k, v, mask)
        t_q, t_k = q.shape[1], k.shape[1]
        do = _heads_first(dout)
        rowsum = jnp.einsum("bqhd,bqhd->bhq", dout, out)[..., None]

        def step(dq, xs):
            i, k_blk, v_blk, m_blk = xs
            s = jnp.einsum("bhqd,bhkd->bhqk", qs, k_blk)
            p = jnp.where(_allowed(i, m_blk, causal, t_q, t_k, block), jnp.exp(s - lse[..., None]), 0)
            ds = p * (jnp.einsum("bhqd,bhkd->bhqk", do, v_blk) - rowsum)
            dk_blk, dv_blk = jnp.einsum("bhqk,bhqd->bhkd", ds, qs), jnp.einsum("bhqk,bhqd->bhkd", p, do)
            return dq + ds @ k_blk, (dk_blk, dv_blk)

        dq, (dk, dv) = jax.lax.scan(step, jnp.zeros_like(qs), (jnp.arange(kb.shape[0]), kb, vb, mb))
        unblock = lambda a: jnp.moveaxis(a, 0, 2).reshape(*a.shape[1:3], -1, a.shape[-1])[:, :, :t_k]
        return _heads_first(dq * scale), _heads_first(unblock(dk)), _heads_first(unblock(dv))


blockwise_attention = BlockwiseAttention("blockwise_attention", 128)


def _case(t_q, t_k, block, **options):
    """A gradient-check row: the hand backward (P recomputed per block) against autodiff of the forward."""
    attend = blockwise_attention._replace(block_size=block)

    def make(key):
        q, k, v = (jax.random.normal(kk, (2, t, 2, 3), jnp.float64) for kk, t in zip(jax.random.split(key, 3),
                                                                                   (t_q, t_k, t_k)))

        def hand_vjp(primals, cotangent):
            out, lse = attend(*primals, **options)
            return attend.backward(*primals, lse, cotangent, out, **options)
        return (lambda *qkv: attend(*qkv, **options)[0]), hand_vjp, (q, k, v)
    return make


_KEY_PADDING = np.array([[True] * 6, [True, True, False, True, False, False]])[:, None, None, :]   # (B, 1, 1, T_k)
CASES = (
    FunctionCase("blockwise_attention", _case(5, 7, 3)),
    FunctionCase("blockwise_attention-causal", _case(6, 6, 4, causal=True)),
    FunctionCase("blockwise_attention-causal-Tq<Tk", _case(3, 7, 2, causal=True)),
    FunctionCase("blockwise_attention-key-padding", _case(5, 6, 4, mask=_KEY_PADDING)),
    FunctionCase("blockwise_attention-T1", _case(1, 1, 8)),
)
