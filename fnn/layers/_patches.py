"""Window geometry and the im2col helpers shared by convolution and pooling.

Images are channels-last: a batch is (B, *spatial, C). A window op on the
padded input xp reads, for output position o and window offset k (one per
spatial axis), the element xp[o * stride + k * dilation]. `window_views` cuts
xp into one strided view per offset (row-major order of offsets), so that
im2col is `concatenate(views, axis=-1)`; `col2im` is its adjoint, written as a
sum of zero-paddings (one fused loop on XLA:CPU, ~3x faster than scatter-add).
"""
from __future__ import annotations

import functools
import itertools
import math

import jax.numpy as jnp
from jax import lax

SPATIAL_AXES = {1: "L", 2: "HW", 3: "DHW"}   # axis letters: messages and lax dimension numbers


def as_tuple(value, n: int, what: str, name: str) -> tuple[int, ...]:
    """An int or a length-`n` sequence of positive ints, as a tuple of `n` ints."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                   for v in values):
        raise ValueError(f"{name}: {what} must be a positive int or {n} positive ints, got {value!r}")
    return values


def as_padding(padding, n: int, name: str):
    """"SAME", "VALID", an int, n ints, or n (lo, hi) pairs -> "SAME"/"VALID" or n pairs."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"{name}: padding must be 'SAME', 'VALID' or ints, got {padding!r}")
        return padding.upper()
    items = (padding,) * n if isinstance(padding, int) else tuple(padding)
    pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in items)
    if len(pairs) != n or not all(len(p) == 2 and all(isinstance(v, int) and v >= 0 for v in p)
                                  for p in pairs):
        raise ValueError(f"{name}: padding must be 'SAME', 'VALID', a non-negative int, {n} ints "
                         f"or {n} (lo, hi) pairs, got {padding!r}")
    return pairs


def resolve_pads(padding, sizes, window, stride, dilation) -> tuple[tuple[int, int], ...]:
    """(lo, hi) per spatial axis. SAME gives ceil(n / stride) outputs, the extra
    padding going to the high side (as lax and TensorFlow)."""
    if padding == "VALID":
        return tuple((0, 0) for _ in sizes)
    if padding != "SAME":
        return tuple(padding)
    pads = []
    for n, f, s, d in zip(sizes, window, stride, dilation, strict=True):
        total = max((-(-n // s) - 1) * s + d * (f - 1) + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def out_sizes(padded, window, stride, dilation) -> tuple[int, ...]:
    """Output size per axis: floor((n_padded - d (F - 1) - 1) / S) + 1."""
    axes = zip(padded, window, stride, dilation, strict=True)
    return tuple((n - d * (f - 1) - 1) // s + 1 for n, f, s, d in axes)


def pad_input(x, pads, lhs_dilation, value=0.0):
    """Insert lhs_dilation - 1 zeros between inputs, then pad each spatial axis by (lo, hi)."""
    config = [(lo, hi, l - 1) for (lo, hi), l in zip(pads, lhs_dilation, strict=True)]
    return lax.pad(x, jnp.asarray(value, x.dtype), [(0, 0, 0), *config, (0, 0, 0)])


def unpad_input(dxp, pads, lhs_dilation, sizes):
    """Adjoint of `pad_input`: the strided slice of dxp that the inputs landed on."""
    start = [0] + [lo for lo, _ in pads] + [0]
    axes = zip(pads, sizes, lhs_dilation, strict=True)
    limit = [dxp.shape[0]] + [lo + (n - 1) * l + 1 for (lo, _), n, l in axes]
    return lax.slice(dxp, start, limit + [dxp.shape[-1]], [1, *lhs_dilation, 1])


def offsets(window):
    """Window offsets in row-major order (the order of W's leading axes)."""
    return list(itertools.product(*(range(f) for f in window)))


def window_views(xp, window, stride, dilation, out):
    """One (B, *out, C) strided view of xp per window offset, row-major."""
    views = []
    for k in offsets(window):
        start = [0] + [ki * d for ki, d in zip(k, dilation, strict=True)] + [0]
        axes = zip(start[1:-1], out, stride, strict=True)
        limit = [xp.shape[0]] + [st + (o - 1) * s + 1 for st, o, s in axes]
        views.append(lax.slice(xp, start, limit + [xp.shape[-1]], [1, *stride, 1]))
    return views


def col2im(pieces, padded, window, stride, dilation):
    """Adjoint of `window_views`: dxp = sum_k zero-pad(piece_k) placed at o * S + k * D."""
    total = None
    for k, piece in zip(offsets(window), pieces, strict=True):
        config = [(0, 0, 0)]
        for ki, d, s, o, n in zip(k, dilation, stride, piece.shape[1:-1], padded, strict=True):
            config.append((ki * d, n - ki * d - (o - 1) * s - 1, s - 1))
        placed = lax.pad(piece, jnp.zeros((), piece.dtype), config + [(0, 0, 0)])
        total = placed if total is None else total + placed
    return total


def variant(general, name: str, doc: str, *args, **fixed):
    """`functools.partial(general, *args, name=name, **fixed)` with its own name and docstring."""
    fn = functools.partial(general, *args, name=name, **fixed)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = general.__module__
    fn.__doc__ = doc
    return fn


def size(shape) -> int:
    return math.prod(shape)
