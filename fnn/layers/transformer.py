"""Transformer parts: positional encodings and pre-LayerNorm encoder and decoder blocks, built
from fnn's own layers, so their backward is the composition of hand-derived ones.

A block takes x (B, T, E) or (x, mask) and gives back the same structure, so blocks stack in
`serial`; a decoder block takes (y, memory) or (y, memory, memory_mask) likewise, and
`Pick(0)` takes y out at the end. Masks are boolean and get no gradient (None).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..core import Layer, check_example_shape, check_input, is_multi_shape
from ..gradcheck import Case
from .activation import Gelu
from .attention import MultiHeadAttention
from .combinators import serial
from .dense import Dense
from .dropout import Dropout
from .gating import StochasticDepth
from .norm import LayerNorm


def _first(x):
    """(x, rest): the sequence and what rides along with it (a mask, a memory)."""
    return (x[0], tuple(x[1:])) if isinstance(x, (tuple, list)) else (x, None)


def _rejoin(y, rest):
    return y if rest is None else (y, *rest)


def sinusoids(length: int, dim: int, dtype=jnp.float32) -> jax.Array:
    """PE[t, 2i] = sin(t / 10000^(2i/E)),  PE[t, 2i+1] = cos(t / 10000^(2i/E));  shape (length, dim)."""
    position = jnp.arange(length, dtype=jnp.float32)[:, None]
    rate = jnp.exp(jnp.arange(0, dim, 2, dtype=jnp.float32) * (-math.log(10000.0) / dim))
    pe = jnp.zeros((length, dim), jnp.float32)
    pe = pe.at[:, 0::2].set(jnp.sin(position * rate)).at[:, 1::2].set(jnp.cos(position * rate)[:, :dim // 2])
    return pe.astype(dtype)


def _positions(learned: bool, name: str) -> Layer:
    def init(key, in_shape):
        shape = in_shape[0] if is_multi_shape(in_shape) else in_shape
        check_example_shape(name, shape, "(T, E)", rank=2)
        params = {"W": 0.02 * jax.random.normal(key, tuple(shape), jnp.float32)} if learned else ()
        return in_shape, params, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        seq, rest = _first(x)
        check_input(name, seq)
        t, e = seq.shape[1:]
        table = params["W"] if learned else sinusoids(t, e, seq.dtype)
        if seq.ndim != 3 or t > table.shape[0] or e != table.shape[1]:
            raise ValueError(f"{name}: expected x of shape (B, T <= {table.shape[0]}, {table.shape[1]}), "
                             f"got {seq.shape}")
        return _rejoin(seq + table[:t], rest), state, None

    def backward(params, cache, dy):
        dseq, rest = _first(dy)
        dparams = {"W": jnp.zeros_like(params["W"]).at[:dseq.shape[1]].set(dseq.sum(axis=0))} if learned else ()
        return dparams, _rejoin(dseq, None if rest is None else tuple(None for _ in rest))

    return Layer(init, forward, backward, name)


def SinusoidalPositions(*, name: str = "SinusoidalPositions") -> Layer:
    """y = x + PE[:T]  with the fixed sinusoids of Vaswani et al. 2017 (`sinusoids`).

    Shapes: x (B, T, E) or (x, mask) -> the same;  no params.
    Backward: dx = dy.
    """
    return _positions(False, name)


def LearnedPositions(*, name: str = "LearnedPositions") -> Layer:
    """y = x + W[:T]  with one learned vector per position (BERT, ViT).

    Shapes: x (B, T, E) or (x, mask) -> the same;  W (T_max, E), T_max from in_shape; T <= T_max.
    Backward: dW[:T] = sum_b dy,  dW[T:] = 0,  dx = dy.
    """
    return _positions(True, name)


def _mlp(embed_dim, mlp_dim, dropout, eps=1e-5):
    return serial(LayerNorm(eps), Dense(mlp_dim), Gelu(), Dropout(dropout), Dense(embed_dim), Dropout(dropout),
                  name="mlp")


def _head_dim(name, embed_dim, num_heads):
    for arg, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    if embed_dim % num_heads:
        raise ValueError(f"{name}: embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
    return embed_dim // num_heads


def _keys(key, n):
    return [None if key is None else jax.random.fold_in(key, i) for i in range(n)]


def _init_children(name, children, key, in_shape, embed_dim, shapes):
    """Init each child at its input shape; the block keeps the shape of its input."""
    seq = in_shape[0] if is_multi_shape(in_shape) else in_shape
    check_example_shape(name, seq, f"(T, {embed_dim})", rank=2)
    if seq[-1] != embed_dim:
        raise ValueError(f"{name}: expected in_shape (T, {embed_dim}), got {tuple(seq)}")
    outs = [child.init(k, shape) for child, k, shape in zip(children, jax.random.split(key, len(children)), shapes)]
    return in_shape, tuple(o[1] for o in outs), tuple(o[2] for o in outs)


def TransformerEncoderBlock(embed_dim: int, num_heads: int, mlp_dim: int, *, dropout: float = 0.1,
                            causal: bool = False, eps: float = 1e-5, drop_path: float = 0.0,
                            name: str = "TransformerEncoderBlock") -> Layer:
    """Pre-LN block: h = x + SD(Drop(MHA(LN(x), mask))),  y = h + SD(MLP(h)),
    MLP = Drop(W_2 Drop(GELU(W_1 LN(h)))),  SD = StochasticDepth(drop_path) (training only: each
    example's branch is dropped with probability drop_path, else scaled by 1 / (1 - drop_path)).

    Shapes: x (B, T, E) or (x, mask) -> the same structure;  mask broadcasts to (B, H, T, T).
    Children (params in this order): LayerNorm(eps), MultiHeadAttention(H, E/H), Dropout, mlp (a serial).
    Backward: dh = dy + mlp.backward(SD.backward(dy));  dx = dh + LN.backward(MHA.backward(Drop.backward(
        SD.backward(dh)))), SD.backward multiplying by the forward's per-example mask (the identity at 0).
    """
    children = (LayerNorm(eps), MultiHeadAttention(num_heads, _head_dim(name, embed_dim, num_heads), causal=causal),
                Dropout(dropout), _mlp(embed_dim, mlp_dim, dropout, eps))
    norm, attend, drop, mlp = children
    depth = StochasticDepth(drop_path, name=f"{name}/drop_path") if drop_path else None   # no params: no child

    def branch(x, k, train):
        return (x, None) if depth is None else depth.forward((), (), x, key=k, train=train)[::2]

    def branch_backward(cache, dy):
        return dy if depth is None else depth.backward((), cache, dy)[1]

    def init(key, in_shape):
        seq = in_shape[0] if is_multi_shape(in_shape) else in_shape
        return _init_children(name, children, key, in_shape, embed_dim, (seq, seq, seq, seq))

    def forward(params, state, x, *, key=None, train=False):
        seq, rest = _first(x)
        k = _keys(key, 6)
        a, s0, c0 = norm.forward(params[0], state[0], seq)
        b, s1, c1 = attend.forward(params[1], state[1], a if rest is None else (a, *rest))
        d, s2, c2 = drop.forward(params[2], state[2], b, key=k[2], train=train)
        d, cd = branch(d, k[4], train)
        m, s3, c3 = mlp.forward(params[3], state[3], seq + d, key=k[3], train=train)
        m, cm = branch(m, k[5], train)
        return _rejoin(seq + d + m, rest), (s0, s1, s2, s3), (c0, c1, c2, c3, cd, cm)

    def backward(params, cache, dy):
        dy, rest = _first(dy)
        p3, dm = mlp.backward(params[3], cache[3], branch_backward(cache[5], dy))
        dh = dy + dm
        p2, dd = drop.backward(params[2], cache[2], branch_backward(cache[4], dh))
        p1, da = attend.backward(params[1], cache[1], dd)
        p0, dx = norm.backward(params[0], cache[0], _first(da)[0])
        return (p0, p1, p2, p3), _rejoin(dh + dx, None if rest is None else (None,))

    return Layer(init, forward, backward, name, children)


def TransformerDecoderBlock(embed_dim: int, num_heads: int, mlp_dim: int, *, dropout: float = 0.1,
                            name: str = "TransformerDecoderBlock") -> Layer:
    """Pre-LN decoder block: h = y + Drop(MHA_causal(LN(y))),  g = h + Drop(MHA(LN(h), memory, mask)),
    out = g + MLP(g).

    Shapes: (y (B, T, E), memory (B, S, E_m)) or (y, memory, memory_mask) -> the same structure;
        memory_mask broadcasts to (B, H, T, S).
    Children: LayerNorm, causal self-MultiHeadAttention, Dropout, LayerNorm, cross-MultiHeadAttention,
        Dropout, mlp.   Backward: the chain rule through the three residual branches; dmemory
        = the incoming dmemory + the cross-attention's dx_kv.
    """
    head_dim = _head_dim(name, embed_dim, num_heads)
    children = (LayerNorm(), MultiHeadAttention(num_heads, head_dim, causal=True), Dropout(dropout),
                LayerNorm(), MultiHeadAttention(num_heads, head_dim, cross=True), Dropout(dropout),
                _mlp(embed_dim, mlp_dim, dropout))
    children = tuple(c._replace(name=n) for c, n in zip(children, (
        "LayerNorm_1", "self_attention", "Dropout_1", "LayerNorm_2", "cross_attention", "Dropout_2", "mlp")))

    def init(key, in_shape):
        if not is_multi_shape(in_shape) or len(in_shape) < 2:
            raise ValueError(f"{name}: expected in_shape ((T, E), (S, E_m)[, mask shape]), got {in_shape}")
        y, memory = in_shape[0], in_shape[1]
        return _init_children(name, children, key, in_shape, embed_dim, (y, y, y, y, (y, memory), y, y))

    def forward(params, state, x, *, key=None, train=False):
        y, (memory, *mask) = _first(x)
        k, out, caches = _keys(key, 7), [], []
        run = lambda i, inp: children[i].forward(params[i], state[i], inp, key=k[i], train=train)
        for i, branch in ((0, lambda a: a), (3, lambda a: (a, memory, *mask))):
            a, s_norm, c_norm = run(i, y)
            b, s_att, c_att = run(i + 1, branch(a))
            d, s_drop, c_drop = run(i + 2, b)
            y = y + d
            out += [s_norm, s_att, s_drop]
            caches += [c_norm, c_att, c_drop]
        m, s_mlp, c_mlp = run(6, y)
        return (y + m, memory, *mask), (*out, s_mlp), (*caches, c_mlp)

    def backward(params, cache, dy):
        dy, (dmemory, *dmask) = _first(dy)
        grads = [None] * 7
        grads[6], dm = children[6].backward(params[6], cache[6], dy)
        dy = dy + dm
        for i in (3, 0):
            grads[i + 2], dd = children[i + 2].backward(params[i + 2], cache[i + 2], dy)
            grads[i + 1], da = children[i + 1].backward(params[i + 1], cache[i + 1], dd)
            if i == 3:
                da, dmem_cross = da[0], da[1]
                dmemory = dmem_cross if dmemory is None else dmemory + dmem_cross
            grads[i], dn = children[i].backward(params[i], cache[i], da)
            dy = dy + dn
        return tuple(grads), (dy, dmemory, *(None for _ in dmask))

    return Layer(init, forward, backward, name, children)


def Pick(index: int, *, name: str = "Pick") -> Layer:
    """y = x[index] of a tuple input (the sequence out of a decoder stack's (y, memory, ...)).

    Shapes: a tuple of arrays -> its element `index`;  no params.
    Backward: dx[index] = dy; zeros for the other float elements, None for masks.
    """
    def init(key, in_shape):
        del key
        if not is_multi_shape(in_shape) or not -len(in_shape) <= index < len(in_shape):
            raise ValueError(f"{name}: expected a tuple of at least {index + 1} input shapes, got {in_shape}")
        return tuple(in_shape[index]), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        if not isinstance(x, (tuple, list)):
            raise TypeError(f"{name}: expected a tuple of arrays, got {type(x).__name__}")
        return x[index], state, tuple(x)

    def backward(params, cache, dy):
        floats = [jnp.issubdtype(a.dtype, jnp.floating) for a in cache]
        return (), tuple(dy if i == index % len(cache) else (jnp.zeros_like(a) if f else None)
                         for i, (a, f) in enumerate(zip(cache, floats)))

    return Layer(init, forward, backward, name)


def _masked_encoder():
    """An encoder block fed a fixed padding mask, giving back the sequence alone (gradient checks)."""
    from .attention import _PAD
    block = TransformerEncoderBlock(4, 2, 6, dropout=0.2)

    def forward(params, state, x, *, key=None, train=False):
        (y, _), state, cache = block.forward(params, state, (x, jnp.asarray(_PAD)), key=key, train=train)
        return y, state, cache

    def backward(params, cache, dy):
        dparams, (dx, _) = block.backward(params, cache, (dy, None))
        return dparams, dx

    return block._replace(forward=forward, backward=backward)


CASES = (
    Case("SinusoidalPositions", SinusoidalPositions, (5, 6)),
    Case("LearnedPositions", LearnedPositions, (5, 6)),
    Case("TransformerEncoderBlock-train", lambda: TransformerEncoderBlock(4, 2, 6, dropout=0.2), (5, 4), train=True),
    Case("TransformerEncoderBlock-drop-path-train",
         lambda: TransformerEncoderBlock(4, 2, 6, dropout=0.0, drop_path=0.5), (5, 4), train=True, batch=6),
    Case("TransformerEncoderBlock-causal-T1", lambda: TransformerEncoderBlock(4, 2, 6, causal=True), (1, 4)),
    Case("TransformerEncoderBlock-mask", _masked_encoder, (6, 4), train=True),
    Case("TransformerDecoderBlock-train", lambda: serial(TransformerDecoderBlock(4, 2, 6, dropout=0.2), Pick(0)),
         ((5, 4), (6, 3)), train=True),
)
