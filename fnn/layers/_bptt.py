"""Backpropagation through time, written by hand (the engine of fnn.layers.recurrent).

All arrays here are time-major: x (T, B, F), gates (T, B, G*H), masks (T, B, 1).
A cell is a record of two step functions on the recurrent part only:

    step(xp_t, hp_t, carry)          -> (new_carry, saved_t)   xp_t = x_t W_x + b_x, hp_t = h W_h + b_h
    back(saved_t, prev, new, d)      -> (da_x, da_h, dprev)    d = dL/d(new carry) (masked)

An `additive` cell (RNN, LSTM) reads only xp_t + hp_t, which the engine hands over as xp_t
(hp_t None), one matmul [x_t, h] [W_x; W_h] per step. `da_x`/`da_h` are dL/d(pre-activation)
on the input and recurrent side (da_h None when equal; GRU's n gate differs), and `dprev`
the gradient reaching the previous carry other than through h W_h. The forward keeps the
carries and the gate activations only, one (T, B, H) stack each (the previous carries are
the kept ones shifted by a step). Only da_h W_h^T runs in the backward loop: dW_x, dW_h
(one [X, H_prev]^T A matmul for an additive cell), db and dx are single matmuls after it.
`fused=True` hoists the
forward's x W_x + b_x out of the loop for all steps (cuDNN's layout); it measured slower
on XLA:CPU (benchmarks/README.md, recurrent.py), so it is not the default.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


class Cell(NamedTuple):
    gates: int            # G: the gate blocks in W_x, W_h, b_x, b_h
    carries: int          # 1 for (h,), 2 for LSTM's (h, c)
    step: Callable
    back: Callable
    additive: bool        # the step reads xp_t + hp_t only


def _sigmoid(a):
    return jax.nn.sigmoid(a)                              # lax.logistic: one XLA op


def _rnn_step(a_t, _, carry):
    return (jnp.tanh(a_t),), ()


def _rnn_back(saved, prev, new, d):
    h = new[0]                                            # held h at a padded step, where d = 0
    da = d[0] * (1 - h * h)                               # da = dh' (1 - h'^2)
    return da, None, (None,)


def _lstm_step(a_t, _, carry):
    c = carry[1]
    i, f, g, o = jnp.split(a_t, 4, axis=-1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), jnp.tanh(g), _sigmoid(o)
    c_new = f * c + i * g
    return (o * jnp.tanh(c_new), c_new), (i, f, g, o)       # 4 stacks: no concat, no (T, B, 4H) init


def _lstm_back(saved, prev, new, d):
    (_, c), (dh, dc) = prev, d
    tc = jnp.tanh(new[1])                                 # recomputed: cheaper than a (T, B, H) stack
    i, f, g, o = saved
    dc = dc + dh * o * (1 - tc * tc)                      # dc' = dc + dh o (1 - tanh(c')^2)
    da = jnp.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f),
                          dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
    return da, None, (None, dc * f)


def _gru_step(xp_t, hp, carry):
    h = carry[0]
    x_r, x_z, x_n = jnp.split(xp_t, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hp, 3, axis=-1)
    r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h,), (r, z, n, h_n)


def _gru_back(saved, prev, new, d):
    (r, z, n, h_n), h, dh = saved, prev[0], d[0]
    da_n = dh * (1 - z) * (1 - n * n)                     # dn = dh (1 - z), through tanh
    da_r = da_n * h_n * r * (1 - r)                       # dr = da_n (h W_hn + b_hn)
    da_z = dh * (h - n) * z * (1 - z)                     # dz = dh (h - n)
    da_x = jnp.concatenate([da_r, da_z, da_n], axis=-1)
    return da_x, jnp.concatenate([da_r, da_z, da_n * r], axis=-1), (dh * z,)


RNN_CELL = Cell(1, 1, _rnn_step, _rnn_back, True)
LSTM_CELL = Cell(4, 2, _lstm_step, _lstm_back, True)
GRU_CELL = Cell(3, 1, _gru_step, _gru_back, False)


def _preactivations(cell, params, fused):
    """x_t (or x_t W_x + b_x when fused), h -> the step's (xp_t, hp_t)."""
    W_x, W_h, b_x, b_h = params["W_x"], params["W_h"], params["b_x"], params["b_h"]
    if cell.additive and not fused:                       # one matmul per step
        W, b = jnp.concatenate([W_x, W_h]), b_x + b_h
        return lambda x_t, h: (jnp.concatenate([x_t, h], axis=-1) @ W + b, None)
    if cell.additive:
        return lambda xp_t, h: (xp_t + (h @ W_h + b_h), None)
    return lambda x_t, h: (x_t if fused else x_t @ W_x + b_x, h @ W_h + b_h)


def _split(a, parts, axis):
    """a split into `parts` equal blocks along `axis` (a tuple; None stays None for each part)."""
    return (None,) * parts if a is None else tuple(jnp.split(a, parts, axis=axis))


def _join(blocks, axis):
    return blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=axis)


def run_forward(cell: Cell, params, x, mask, carry0, fused: bool = False, unroll: int | bool = 1,
                parts: int = 1):
    """Scan `cell` over x (T, B, F); masked steps keep the carry; `unroll` is lax.scan's.
    `parts` > 1 runs the batch as that many independent recurrences in one scan body (blocks
    of B / parts rows: XLA:CPU can put them on different cores).
    Returns (outputs (T, B, H) zero at masked steps, final carry, cache for run_backward)."""
    xs = x @ params["W_x"] + params["b_x"] if fused else x      # one matmul for every step
    preactivations = _preactivations(cell, params, fused)
    xs, masks = _split(xs, parts, 1), _split(mask, parts, 1)
    carry0 = tuple(zip(*(_split(c, parts, 0) for c in carry0)))  # per part: the cell's carry

    def body(carries, inputs):
        out = []
        for carry, x_t, m_t in zip(carries, *inputs):
            new, saved = cell.step(*preactivations(x_t, carry[0]), carry)
            if m_t is not None:
                new = tuple(jnp.where(m_t, n, c) for n, c in zip(new, carry))
            out.append((new, saved))
        return tuple(new for new, _ in out), tuple(out)

    final, kept = lax.scan(body, carry0, (xs, masks), unroll=unroll)
    carries, saved = tuple(k[0] for k in kept), tuple(k[1] for k in kept)
    ys = _join([h if m is None else jnp.where(m, h, 0) for (h, *_), m in zip(carries, masks)], 1)
    final = tuple(_join(blocks, 0) for blocks in zip(*final))
    return ys, final, (_split(x, parts, 1), masks, carry0, carries, saved)


def _plus(*terms):
    terms = [t for t in terms if t is not None]
    return sum(terms[1:], terms[0])


def _masked(m_t, d):
    if m_t is None:
        return d, tuple(None for _ in d)
    return tuple(jnp.where(m_t, a, 0) for a in d), tuple(jnp.where(m_t, 0, a) for a in d)


def run_backward(cell: Cell, params, cache, dys, dfinal, unroll: int | bool = 1):
    """Reverse scan carrying dL/d(carry); dys (T, B, H) or None (only the final carry is
    used), dfinal = dL/d(final carry) (None: zero). Returns (dparams, dx (T, B, F), dL/d(carry0)).
    The batch runs in the forward's parts, one reverse recurrence each in the same body."""
    xs, masks, carry0, carries, saved = cache
    parts = len(xs)
    prev = tuple(tuple(jnp.concatenate([c0[None], c[:-1]]) for c0, c in zip(c0s, cs))
                 for c0s, cs in zip(carry0, carries))
    dfinal = tuple(tuple(jnp.zeros_like(c) if d is None else d for c, d in zip(c0s, ds))
                   for c0s, ds in zip(carry0, zip(*(_split(d, parts, 0) for d in dfinal))))
    W_hT = params["W_h"].T

    def back(dcarry, dy_t, m_t, prev_t, new_t, saved_t):
        if dy_t is not None:
            dy_t = dy_t if m_t is None else jnp.where(m_t, dy_t, 0)
            dcarry = (dcarry[0] + dy_t, *dcarry[1:])
        d, passed = _masked(m_t, dcarry)                  # padded steps pass dcarry through
        da_x, da_h, dprev = cell.back(saved_t, prev_t, new_t, d)
        dh = (da_x if da_h is None else da_h) @ W_hT       # the only matmul inside the loop
        new = (_plus(dh, dprev[0], passed[0]),) + tuple(_plus(a, p) for a, p in zip(dprev[1:], passed[1:]))
        return new, (da_x, da_h)

    def body(dcarries, inputs):
        out = tuple(back(dcarry, *step) for dcarry, *step in zip(dcarries, *inputs))
        return tuple(new for new, _ in out), tuple(a for _, a in out)

    dcarry0, das = lax.scan(body, dfinal, (_split(dys, parts, 1), masks, prev, carries, saved),
                            reverse=True, unroll=unroll)
    grads, dx = _weight_gradients(params, xs, [p[0] for p in prev], das)
    return (grads, _join(dx, 1)), tuple(_join(blocks, 0) for blocks in zip(*dcarry0))


def _weight_gradients(params, xs, h_prevs, das):
    """dW_x = X^T DA_x, db_x = sum DA_x, dW_h = H_prev^T DA_h, db_h = sum DA_h, dx = DA_x W_x^T,
    each a sum over the batch's parts; with da_h None (= DA_x), [dW_x; dW_h] = [X, H_prev]^T DA_x
    is one matmul per part."""
    flat = lambda a: a.reshape(-1, a.shape[-1])                                  # noqa: E731
    F = xs[0].shape[-1]
    grads = None
    for x, h_prev, (da_x, da_h) in zip(xs, h_prevs, das):
        db_x = da_x.sum(axis=(0, 1))
        if da_h is None:
            dW = flat(jnp.concatenate([x, h_prev], axis=-1)).T @ flat(da_x)
            part = {"W_x": dW[:F], "W_h": dW[F:], "b_x": db_x, "b_h": db_x}
        else:
            part = {"W_x": flat(x).T @ flat(da_x), "W_h": flat(h_prev).T @ flat(da_h),
                    "b_x": db_x, "b_h": da_h.sum(axis=(0, 1))}
        grads = part if grads is None else jax.tree.map(jnp.add, grads, part)
    return grads, [da_x @ params["W_x"].T for da_x, _ in das]


def reverse_within(x, lengths):
    """x (B, T, ...) with each sequence reversed within its own length (padding stays put);
    its own inverse. lengths None reverses the whole time axis."""
    if lengths is None:
        return jnp.flip(x, axis=1)
    lengths = jnp.asarray(lengths).astype(jnp.int32)
    t = jnp.arange(x.shape[1], dtype=jnp.int32)[None, :]
    index = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


def time_mask(lengths, T):
    """(T, B, 1) booleans: step t of sequence b is real (t < lengths[b]); None for no lengths."""
    if lengths is None:
        return None
    return (jnp.arange(T, dtype=jnp.int32)[:, None] < jnp.asarray(lengths).astype(jnp.int32)[None, :])[..., None]


def zero_cotangent(x):
    """The cotangent of an integer input (lengths, ids): float0 zeros, as fnn.manual needs."""
    return np.zeros(jnp.shape(x), jax.dtypes.float0)
