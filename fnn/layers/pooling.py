"""Pooling, channels last: MaxPool1D/2D, AvgPool1D/2D, AdaptiveAvgPool2D, GlobalAvgPool, GlobalMaxPool.

Windows that tile the input (stride == window, no padding: the usual 2x2 / 2)
run as a reshape and a max or mean, with a mask-based backward; other windows
use lax.reduce_window forward and a hand-written window scatter (col2im)
backward. Both paths give the same numbers.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case
from ._patches import (
    SPATIAL_AXES,
    as_padding,
    as_tuple,
    col2im,
    out_sizes,
    pad_input,
    resolve_pads,
    unpad_input,
    variant,
    window_views,
)
from ._patches import size as _size


def _tiles(x, window, out):
    """x cropped to out * window and split into tiles: (B, o_1, w_1, ..., o_n, w_n, C)."""
    x = x[(slice(None), *(slice(0, o * w) for o, w in zip(out, window, strict=True)))]
    return x.reshape(x.shape[0], *(d for ow in zip(out, window, strict=True) for d in ow), x.shape[-1])


def _untile(t, sizes):
    """Adjoint of `_tiles`: (B, o_1, w_1, ..., o_n, w_n, C) -> (B, o_1 w_1, ..., o_n w_n, C),
    zero-padded back to the input's `sizes` (the crop)."""
    out, window = t.shape[1:-1:2], t.shape[2:-1:2]
    t = t.reshape(t.shape[0], *(o * w for o, w in zip(out, window, strict=True)), t.shape[-1])
    crop = [(0, m - o * w, 0) for m, o, w in zip(sizes, out, window, strict=True)]
    return lax.pad(t, jnp.zeros((), t.dtype), [(0, 0, 0), *crop, (0, 0, 0)])


def _tile_grads(kind, x, y, dy, window, out):
    """dx in the `_tiles` view (B, o_1, w_1, ..., o_n, w_n, C), one elementwise pass. avg: dy / |window|;
    max: dy where k == first, first = min_k where(t == y, k, |window|), k the row-major offset in the
    window (the first maximum gets all of dy, as `_first_max_pieces`)."""
    tile_shape = (dy.shape[0], *(d for ow in zip(out, window, strict=True) for d in ow), dy.shape[-1])
    axes = tuple(range(2, len(tile_shape) - 1, 2))                          # the w_i axes
    dy_t = jnp.expand_dims(dy, axes)                                          # (B, o_1, 1, ..., C)
    if kind != "max":
        return jnp.broadcast_to(dy_t / _size(window), tile_shape)
    k = np.arange(_size(window), dtype=np.int32).reshape(1, *(d for w in window for d in (1, w)), 1)
    hit = _tiles(x, window, out) == jnp.expand_dims(y, axes)
    first = jnp.min(jnp.where(hit, k, _size(window)), axis=axes, keepdims=True)
    return jnp.where(k == first, dy_t, jnp.zeros((), dy.dtype))


def _geometry(sizes, window, stride, padding):
    ones = (1,) * len(window)
    pads = resolve_pads(padding, sizes, window, stride, ones)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(sizes, pads, strict=True))
    tiled = stride == window and all(p == (0, 0) for p in pads)
    return pads, padded, out_sizes(padded, window, stride, ones), tiled


@functools.partial(jax.jit, static_argnames=("kind", "window", "stride", "geometry"))
def _pool_forward(kind, x, window, stride, geometry):
    pads, _, out, tiled = geometry
    if tiled:
        t = _tiles(x, window, out)
        axes = tuple(range(2, t.ndim - 1, 2))
        return t.max(axis=axes) if kind == "max" else t.sum(axis=axes) / _size(window)
    init, op = (-jnp.inf, lax.max) if kind == "max" else (0.0, lax.add)
    y = lax.reduce_window(x, np.asarray(init, x.dtype), op, (1, *window, 1), (1, *stride, 1),
                          [(0, 0), *pads, (0, 0)])
    return y if kind == "max" else y / _size(window)


def _first_max_pieces(x, y, dy, window, stride, geometry):
    """dy routed to the first maximum of each window: one (B, *out, C) piece per offset (row-major)."""
    pads, _, out, _ = geometry
    ones = (1,) * len(window)
    views = window_views(pad_input(x, pads, ones, -jnp.inf), window, stride, ones, out)
    taken, pieces, zero = jnp.zeros(y.shape, bool), [], jnp.zeros((), dy.dtype)
    for v in views:
        hit = (v == y) & ~taken
        taken = taken | hit
        pieces.append(jnp.where(hit, dy, zero))
    return pieces


@functools.partial(jax.jit, static_argnames=("kind", "window", "stride", "geometry"))
def _pool_backward(kind, x, y, dy, window, stride, geometry):
    pads, padded, out, tiled = geometry
    if tiled:
        return _untile(_tile_grads(kind, x, y, dy, window, out), x.shape[1:-1])
    if kind == "max":
        pieces = _first_max_pieces(x, y, dy, window, stride, geometry)
    else:
        pieces = [dy / _size(window)] * _size(window)                      # each input gets dy / |window|
    ones = (1,) * len(window)
    return unpad_input(col2im(pieces, padded, window, stride, ones), pads, ones, x.shape[1:-1])


def _pool(ndim: int, kind: str, window: int | tuple, stride: int | tuple | None = None,
          padding: str | int | tuple = "VALID", *, name: str = "Pool") -> Layer:
    window = as_tuple(window, ndim, "window", name)
    stride = window if stride is None else as_tuple(stride, ndim, "stride", name)
    padding = as_padding(padding, ndim, name)
    expected = f"(B, {', '.join(SPATIAL_AXES[ndim])}, C)"

    def geometry(sizes):
        return _geometry(tuple(sizes), window, stride, padding)

    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, f"({expected[4:]}", rank=ndim + 1)
        out = geometry(in_shape[:-1])[2]
        if min(out) < 1:
            raise ValueError(f"{name}: window {window} does not fit in in_shape {tuple(in_shape)}")
        return (*out, in_shape[-1]), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x)
        if x.ndim != ndim + 2:
            raise ValueError(f"{name}: expected x of shape {expected}, got {tuple(x.shape)}")
        y = _pool_forward(kind, x, window, stride, geometry(x.shape[1:-1]))
        return y, state, ((x, y) if kind == "max" else x)          # avg reads only x's shape

    def backward(params, cache, dy):
        x, y = cache if kind == "max" else (cache, None)
        return (), _pool_backward(kind, x, y, dy, window, stride, geometry(x.shape[1:-1]))

    return Layer(init, forward, backward, name)


def _global_pool(kind: str, *, name: str = "GlobalPool") -> Layer:
    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(*spatial, C) with a spatial axis", min_rank=2)
        return (in_shape[-1],), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x)
        if x.ndim < 3:
            raise ValueError(f"{name}: expected x of shape (B, *spatial, C), got {tuple(x.shape)}")
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        y = flat.mean(axis=1) if kind == "avg" else flat.max(axis=1)
        return y, state, x

    def backward(params, cache, dy):
        x = cache
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        if kind == "avg":                                            # dx = dy / N everywhere
            dflat = jnp.broadcast_to(dy[:, None, :] / flat.shape[1], flat.shape)
        else:                                                        # dx = dy at the first argmax
            first = jnp.argmax(flat, axis=1)[:, None, :] == jnp.arange(flat.shape[1])[None, :, None]
            dflat = jnp.where(first, dy[:, None, :], jnp.zeros((), dy.dtype))
        return (), dflat.reshape(x.shape)

    return Layer(init, forward, backward, name)


def _bin_means(n: int, out: int) -> np.ndarray:
    """(out, n) averaging matrix of PyTorch's adaptive bins [floor(i n / out), ceil((i + 1) n / out))."""
    A = np.zeros((out, n))
    for i in range(out):
        start, end = (i * n) // out, -(-((i + 1) * n) // out)
        A[i, start:end] = 1.0 / (end - start)
    return A


def AdaptiveAvgPool2D(output_size: int | tuple[int, int], *, name: str = "AdaptiveAvgPool2D") -> Layer:
    """Mean over adaptive bins (torch.nn.AdaptiveAvgPool2d): y[b, i, j, c] = mean of x[b, h, w, c]
    over h in [floor(i H / oh), ceil((i + 1) H / oh)), w likewise; as matrices y = A_h x A_w^T.

    Shapes: x (B, H, W, C) -> y (B, oh, ow, C), output_size = (oh, ow) or one int for both;
        any H, W >= 1 (bins overlap or repeat pixels when H < oh); no params.
    Backward: dx = A_h^T dy A_w (each input gets dy / |bin| of every bin it lies in).
    """
    out = as_tuple(output_size, 2, "output_size", name)

    def matrices(x):
        return [jnp.asarray(_bin_means(n, o), x.dtype) for n, o in zip(x.shape[1:3], out, strict=True)]

    def init(key, in_shape):
        del key
        check_example_shape(name, in_shape, "(H, W, C)", rank=3)
        return (*out, in_shape[-1]), (), ()

    def forward(params, state, x, *, key=None, train=False):
        del params, key, train
        check_input(name, x)
        if x.ndim != 4:
            raise ValueError(f"{name}: expected x of shape (B, H, W, C), got {tuple(x.shape)}")
        A_h, A_w = matrices(x)
        return jnp.einsum("ih,bhwc,jw->bijc", A_h, x, A_w), state, x      # backward reads x's shape

    def backward(params, cache, dy):
        A_h, A_w = matrices(cache)
        return (), jnp.einsum("ih,bijc,jw->bhwc", A_h, dy, A_w)

    return Layer(init, forward, backward, name)


_POOL_DOC = """{n}-D {what} pooling, channels last: {formula}

Shapes: x (B, {sp}, C) -> y (B, {sp_out}, C);  n_out = floor((n + P_lo + P_hi - F) / S) + 1;
    window F, stride S (default: the window), padding "VALID" (default), "SAME" or ints; no params.
Backward: {backward}
Speed: tiling windows (stride == window, no padding) run as a reshape and a {red}
    (backward by {how}); others as lax.reduce_window and a hand-written col2im scatter.
"""
_MAX = dict(what="max", red="max", how="mask",
            formula="y[b, o, c] = max_k xp[b, o S + k, c], xp padded with -inf.",
            backward="dx[o S + k*] += dy[o], k* the FIRST maximum of the window in row-major\n"
                     "    order (ties: the first gets all of dy, as lax.reduce_window's VJP and PyTorch).")
_AVG = dict(what="average", red="mean", how="broadcast",
            formula="y[b, o, c] = (1 / |window|) sum_k xp[b, o S + k, c];\n"
                    "    padding counts as zeros in the mean (PyTorch's count_include_pad=True).",
            backward="dx[o S + k] += dy[o] / |window| for every k in the window.")
_1D, _2D = dict(n=1, sp="L", sp_out="L_out"), dict(n=2, sp="H, W", sp_out="H_out, W_out")

MaxPool1D = variant(_pool, "MaxPool1D", _POOL_DOC.format(**_1D, **_MAX), 1, "max")
MaxPool2D = variant(_pool, "MaxPool2D", _POOL_DOC.format(**_2D, **_MAX), 2, "max")
AvgPool1D = variant(_pool, "AvgPool1D", _POOL_DOC.format(**_1D, **_AVG), 1, "avg")
AvgPool2D = variant(_pool, "AvgPool2D", _POOL_DOC.format(**_2D, **_AVG), 2, "avg")
GlobalAvgPool = variant(_global_pool, "GlobalAvgPool", """Spatial mean: y[b, c] = mean_s x[b, s, c].

Shapes: x (B, *spatial, C) -> y (B, C), at least one spatial axis; no params.
Backward: dx[b, s, c] = dy[b, c] / N, N = the number of spatial positions.
""", "avg")
GlobalMaxPool = variant(_global_pool, "GlobalMaxPool", """Spatial max: y[b, c] = max_s x[b, s, c].

Shapes: x (B, *spatial, C) -> y (B, C), at least one spatial axis; no params.
Backward: dx[b, s, c] = dy[b, c] at the first argmax s in row-major order (ties: the
    first gets all of dy), 0 elsewhere.
""", "max")

CASES = (
    Case("MaxPool2D-2x2", lambda: MaxPool2D(2), (4, 6, 2)),
    Case("MaxPool2D-2x2-crop", lambda: MaxPool2D(2), (5, 5, 2)),
    Case("MaxPool2D-3x3-s2-same", lambda: MaxPool2D(3, 2, "SAME"), (5, 6, 2)),
    Case("MaxPool2D-3x2-s1-valid", lambda: MaxPool2D((3, 2), 1), (4, 5, 2)),
    Case("MaxPool2D-explicit-pad", lambda: MaxPool2D(2, 2, ((1, 0), (0, 1))), (5, 5, 2)),
    Case("MaxPool1D-2", lambda: MaxPool1D(2), (7, 3)),
    Case("MaxPool1D-3-s2-same", lambda: MaxPool1D(3, 2, "SAME"), (7, 3)),
    Case("AvgPool2D-2x2", lambda: AvgPool2D(2), (4, 6, 2)),
    Case("AvgPool2D-3x3-s2-same", lambda: AvgPool2D(3, 2, "SAME"), (5, 6, 2)),
    Case("AvgPool2D-2x3-s1-valid", lambda: AvgPool2D((2, 3), 1), (4, 5, 2)),
    Case("AvgPool1D-2", lambda: AvgPool1D(2), (7, 3)),
    Case("AvgPool1D-3-s1-same", lambda: AvgPool1D(3, 1, "SAME"), (6, 3)),
    Case("AdaptiveAvgPool2D-down", lambda: AdaptiveAvgPool2D((2, 3)), (5, 7, 2)),
    Case("AdaptiveAvgPool2D-up", lambda: AdaptiveAvgPool2D(3), (2, 2, 2)),
    Case("AdaptiveAvgPool2D-1x1", lambda: AdaptiveAvgPool2D(1), (3, 4, 2)),
    Case("GlobalAvgPool", GlobalAvgPool, (3, 4, 2)),
    Case("GlobalMaxPool", GlobalMaxPool, (3, 4, 2)),
    Case("GlobalMaxPool-1d", GlobalMaxPool, (5, 3)),
)
