"""Backpropagation through time, written by hand, cuDNN-style (the engine of fnn.layers.recurrent).

All arrays here are time-major: x (T, B, F), gates (T, B, G*H), masks (T, B, 1).
A cell is a record of two step functions on the recurrent part only:

    step(params, xp_t, carry)        -> (new_carry, saved_t)     xp_t = x_t W_x + b_x, precomputed
    back(params, saved_t, prev, d)   -> (da_x, da_h, dprev)      d = dL/d(new carry) (masked)

`da_x`/`da_h` are dL/d(pre-activation) on the input and recurrent side (equal but for
GRU's n gate), and `dprev` the gradient reaching the previous carry other than through
h W_h. The projection x W_x + b_x of every step is one matmul before the loop; dW_x, db_x,
dW_h, db_h and dx are single matmuls after it; only da_h W_h^T stays in the loop.
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


def _sigmoid(a):
    return 1 / (1 + jnp.exp(-a))


def _recurrent(params, h):
    return h @ params["W_h"] + params["b_h"]


def _rnn_step(params, xp_t, carry):
    h = jnp.tanh(xp_t + _recurrent(params, carry[0]))
    return (h,), h


def _rnn_back(params, saved, prev, d):
    da = d[0] * (1 - saved * saved)                       # da = dh' (1 - h'^2)
    return da, da, (None,)


def _lstm_step(params, xp_t, carry):
    h, c = carry
    i, f, g, o = jnp.split(xp_t + _recurrent(params, h), 4, axis=-1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), jnp.tanh(g), _sigmoid(o)
    c_new = f * c + i * g
    tc = jnp.tanh(c_new)
    return (o * tc, c_new), (jnp.concatenate([i, f, g, o], axis=-1), tc)


def _lstm_back(params, saved, prev, d):
    (act, tc), (_, c), (dh, dc) = saved, prev, d
    i, f, g, o = jnp.split(act, 4, axis=-1)
    dc = dc + dh * o * (1 - tc * tc)                      # dc' = dc + dh o (1 - tanh(c')^2)
    da = jnp.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f),
                          dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
    return da, da, (None, dc * f)


def _gru_step(params, xp_t, carry):
    h = carry[0]
    hp = _recurrent(params, h)
    x_r, x_z, x_n = jnp.split(xp_t, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hp, 3, axis=-1)
    r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h,), (jnp.concatenate([r, z, n], axis=-1), h_n)


def _gru_back(params, saved, prev, d):
    (rzn, h_n), h, dh = saved, prev[0], d[0]
    r, z, n = jnp.split(rzn, 3, axis=-1)
    da_n = dh * (1 - z) * (1 - n * n)                     # dn = dh (1 - z), through tanh
    da_r = da_n * h_n * r * (1 - r)                       # dr = da_n (h W_hn + b_hn)
    da_z = dh * (h - n) * z * (1 - z)                     # dz = dh (h - n)
    da_x = jnp.concatenate([da_r, da_z, da_n], axis=-1)
    return da_x, jnp.concatenate([da_r, da_z, da_n * r], axis=-1), (dh * z,)


RNN_CELL = Cell(1, 1, _rnn_step, _rnn_back)
LSTM_CELL = Cell(4, 2, _lstm_step, _lstm_back)
GRU_CELL = Cell(3, 1, _gru_step, _gru_back)


def run_forward(cell: Cell, params, x, mask, carry0, fused: bool = True):
    """Scan `cell` over x (T, B, F); masked steps keep the carry. Returns
    (outputs (T, B, H) zero at masked steps, final carry, cache for run_backward)."""
    xp = x @ params["W_x"] + params["b_x"] if fused else x      # one matmul for every step

    def body(carry, inputs):
        xp_t, m_t = inputs
        if not fused:
            xp_t = xp_t @ params["W_x"] + params["b_x"]
        new, saved = cell.step(params, xp_t, carry)
        if m_t is not None:
            new = tuple(jnp.where(m_t, n, c) for n, c in zip(new, carry))
        out = new[0] if m_t is None else jnp.where(m_t, new[0], 0)
        return new, (out, carry, saved)

    final, (ys, prev, saved) = lax.scan(body, carry0, (xp, mask))
    return ys, final, (x, mask, prev, saved)


def _plus(*terms):
    terms = [t for t in terms if t is not None]
    return sum(terms[1:], terms[0])


def _masked(m_t, d):
    if m_t is None:
        return d, tuple(None for _ in d)
    return tuple(jnp.where(m_t, a, 0) for a in d), tuple(jnp.where(m_t, 0, a) for a in d)


def run_backward(cell: Cell, params, cache, dys, dfinal, fused: bool = True):
    """Reverse scan carrying dL/d(carry); dys (T, B, H) or None (only the final carry is
    used), dfinal = dL/d(final carry). Returns (dparams, dx (T, B, F), dL/d(carry0))."""
    x, mask, prev, saved = cache
    W_hT = params["W_h"].T

    def body(dcarry, inputs):
        dy_t, m_t, prev_t, saved_t = inputs
        if dy_t is not None:
            dy_t = dy_t if m_t is None else jnp.where(m_t, dy_t, 0)
            dcarry = (dcarry[0] + dy_t, *dcarry[1:])
        d, passed = _masked(m_t, dcarry)                  # padded steps pass dcarry through
        da_x, da_h, dprev = cell.back(params, saved_t, prev_t, d)
        dh = da_h @ W_hT                                   # the only matmul inside the loop
        new = (_plus(dh, dprev[0], passed[0]),) + tuple(_plus(a, p) for a, p in zip(dprev[1:], passed[1:]))
        outs = (da_x, None if da_h is da_x else da_h)
        if not fused:
            outs = (outs, da_x @ params["W_x"].T)
        return new, outs

    dcarry0, outs = lax.scan(body, dfinal, (dys, mask, prev, saved), reverse=True)
    return _weight_gradients(params, x, prev[0], outs, fused), dcarry0


def _weight_gradients(params, x, h_prev, outs, fused):
    """dW_x = X^T DA_x, db_x = sum DA_x, dW_h = H_prev^T DA_h, db_h = sum DA_h, dx = DA_x W_x^T."""
    (da_x, da_h), dx = (outs, None) if fused else outs
    da_h = da_x if da_h is None else da_h
    flat = lambda a: a.reshape(-1, a.shape[-1])                                  # noqa: E731
    grads = {"W_x": flat(x).T @ flat(da_x), "W_h": flat(h_prev).T @ flat(da_h),
             "b_x": da_x.sum(axis=(0, 1)), "b_h": da_h.sum(axis=(0, 1))}
    return grads, (da_x @ params["W_x"].T if fused else dx)


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
