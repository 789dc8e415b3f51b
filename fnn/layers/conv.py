"""Convolutions: Conv1D, Conv2D, ConvTranspose2D (channels-last), both passes by hand.

Two formulations of the same maps, chosen by `impl`:
  "im2col"  patches (N, K C) @ W (K C, C_out), N = B * prod(out), K = prod(kernel);
            dW = patches^T dy and dx = col2im(dy W^T): matmuls plus fused copies.
  "lax"     lax.conv_general_dilated for the forward, dW (x correlated with dy) and
            dx (dy convolved with the flipped kernel, lhs-dilated by the stride).
  "auto"    im2col on CPU (XLA:CPU runs lax.conv far below its matmul rate, and
            slower still inside lax.scan, jax-ml/jax#12868), lax elsewhere.
Depthwise (groups == C_in) under im2col: y = sum_k view_k * W[k], fused multiply-adds, as
the grouped matmul would have width 1 (~30x slower on XLA:CPU, as is lax.conv there).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case
from ..initializers import Initializer, he_normal, zeros
from ._patches import (
    SPATIAL_AXES,
    as_padding,
    as_tuple,
    col2im,
    offsets,
    out_sizes,
    pad_input,
    resolve_pads,
    unpad_input,
    variant,
    window_views,
)

_IMPLS = ("auto", "im2col", "lax")


class Geometry(NamedTuple):
    """Static layout of one convolution: x is lhs-dilated, padded by (lo, hi), then
    read with window strides `stride` and kernel dilation `dilation`."""
    sizes: tuple          # input spatial sizes
    pads: tuple           # (lo, hi) per spatial axis
    lhs_dilation: tuple   # > 1 only for transposed convolutions
    stride: tuple
    dilation: tuple
    padded: tuple         # (n - 1) * lhs_dilation + 1 + lo + hi
    out: tuple            # output spatial sizes


def _transpose_pads(padding, window, stride, dilation):
    """lax.conv_transpose's pads for SAME/VALID; explicit p means the padding of the
    forward conv this one transposes (PyTorch): D (F - 1) - p on each side."""
    pads = []
    explicit = padding if isinstance(padding, tuple) else window     # (window: a placeholder)
    for f, s, d, p in zip(window, stride, dilation, explicit, strict=True):
        k = d * (f - 1) + 1
        if padding == "SAME":
            total, lo = k + s - 2, (k - 1 if s > k - 1 else -(-(k + s - 2) // 2))
        elif padding == "VALID":
            total, lo = k + s - 2 + max(k - s, 0), k - 1
        else:
            total, lo = 2 * (k - 1) - p[0] - p[1], k - 1 - p[0]
        pads.append((lo, total - lo))
    return tuple(pads)


def _geometry(sizes, window, stride, padding, dilation, transpose) -> Geometry:
    ones = (1,) * len(window)
    if transpose:
        pads, lhs, strides = _transpose_pads(padding, window, stride, dilation), stride, ones
    else:
        pads, lhs, strides = resolve_pads(padding, sizes, window, stride, dilation), ones, stride
    padded = tuple((n - 1) * l + 1 + lo + hi for n, l, (lo, hi) in zip(sizes, lhs, pads, strict=True))
    return Geometry(tuple(sizes), pads, lhs, strides, dilation, padded,
                    out_sizes(padded, window, strides, dilation))


# ----------------------------------------------------------------- im2col
# The multi-op helpers are jitted with static geometry: inside a jitted step this
# changes nothing (nested jit inlines), and an eager call compiles one fused
# program instead of dozens of one-op kernels (a 10x faster first call).

def _views(x, g: Geometry, window):
    """One strided view of the padded x per window offset (`window_views`)."""
    return window_views(pad_input(x, g.pads, g.lhs_dilation), window, g.stride, g.dilation, g.out)


def _im2col(x, g: Geometry, window):
    return jnp.concatenate(_views(x, g, window), axis=-1)


@functools.partial(jax.jit, static_argnames=("g", "groups"))
def _im2col_forward(x, W, g, groups):
    patches = _im2col(x, g, W.shape[:-2])
    p2, (c_in, c_out) = patches.reshape(-1, patches.shape[-1]), W.shape[-2:]
    if groups == 1:
        y = p2 @ W.reshape(-1, c_out)
    else:
        w4 = W.reshape(-1, c_in, groups, c_out // groups)
        y = jnp.einsum("nkgc,kcgo->ngo", p2.reshape(p2.shape[0], -1, groups, c_in), w4)
    return y.reshape(*patches.shape[:-1], c_out), patches


@functools.partial(jax.jit, static_argnames=("g", "groups"))
def _im2col_backward(W, patches, dy, g: Geometry, groups):
    window, (c_in, c_out) = W.shape[:-2], W.shape[-2:]
    p2, dy2 = patches.reshape(-1, patches.shape[-1]), dy.reshape(-1, c_out)
    if groups == 1:
        dW = (p2.T @ dy2).reshape(W.shape)                                   # patches^T dy
        dp = dy2 @ W.reshape(-1, c_out).T                                    # dy W^T
    else:
        p4, w4 = p2.reshape(p2.shape[0], -1, groups, c_in), W.reshape(-1, c_in, groups, c_out // groups)
        dy3 = dy2.reshape(-1, groups, c_out // groups)
        dW = jnp.einsum("nkgc,ngo->kcgo", p4, dy3).reshape(W.shape)
        dp = jnp.einsum("ngo,kcgo->nkgc", dy3, w4)
    dp = dp.reshape(*dy.shape[:-1], len(offsets(window)), -1)
    pieces = [dp[..., i, :] for i in range(dp.shape[-2])]
    dxp = col2im(pieces, g.padded, window, g.stride, g.dilation)               # col2im(dy W^T)
    return dW, unpad_input(dxp, g.pads, g.lhs_dilation, g.sizes)


# ----------------------------------------------------------------- depthwise

@functools.partial(jax.jit, static_argnames=("g",))
def _depthwise_forward(x, W, g):
    """groups == C_in, m = C_out / C_in: y[b, o, c m + j] = sum_k xp[b, o S + k D, c] W[k, 0, c m + j]."""
    views, m = _views(x, g, W.shape[:-2]), W.shape[-1] // x.shape[-1]
    w = W.reshape(len(views), -1)
    y = jnp.repeat(views[0], m, axis=-1) * w[0]
    for v, wk in zip(views[1:], w[1:]):
        y = y + jnp.repeat(v, m, axis=-1) * wk
    return y


@functools.partial(jax.jit, static_argnames=("g",))
def _depthwise_backward(x, W, dy, g):
    """dW[k] = sum_{b,o} xp[b, o S + k D] dy[b, o];  dxp = col2im(dy W[k], summed over the m copies)."""
    window, (c_in, c_out) = W.shape[:-2], (x.shape[-1], W.shape[-1])
    views, w, dy2 = _views(x, g, window), W.reshape(-1, c_out), dy.reshape(-1, c_out)
    dW = jnp.stack([(jnp.repeat(v, c_out // c_in, axis=-1).reshape(-1, c_out) * dy2).sum(axis=0)
                    for v in views]).reshape(W.shape)
    pieces = [(dy * wk).reshape(*dy.shape[:-1], c_in, c_out // c_in).sum(axis=-1) for wk in w]
    dxp = col2im(pieces, g.padded, window, g.stride, g.dilation)
    return dW, unpad_input(dxp, g.pads, g.lhs_dilation, g.sizes)


# ----------------------------------------------------------------- lax.conv

def _lax_forward(x, W, g: Geometry, groups):
    sp = SPATIAL_AXES[W.ndim - 2]
    return lax.conv_general_dilated(x, W, g.stride, g.pads, g.lhs_dilation, g.dilation,
                                    ("N" + sp + "C", sp + "IO", "N" + sp + "C"),
                                    feature_group_count=groups)


@functools.partial(jax.jit, static_argnames=("g", "window", "groups"))
def _lax_grad_W(x, dy, g: Geometry, window, groups):
    """dW[k] = sum_{b,o} xp[b, o S + k D] dy[b, o]: x (channels as batch) correlated with dy."""
    sp = SPATIAL_AXES[len(window)]
    hi = [s * (o - 1) + d * (f - 1) + 1 - ((n - 1) * l + 1) - lo
          for s, o, d, f, n, l, (lo, _) in zip(g.stride, g.out, g.dilation, window, g.sizes,
                                               g.lhs_dilation, g.pads, strict=True)]
    pads = [(lo, h) for (lo, _), h in zip(g.pads, hi, strict=True)]
    return lax.conv_general_dilated(x, dy, g.dilation, pads, g.lhs_dilation, g.stride,
                                    ("C" + sp + "N", "I" + sp + "O", sp + "NC"), batch_group_count=groups)


@functools.partial(jax.jit, static_argnames=("g", "groups"))
def _lax_grad_x(W, dy, g: Geometry, groups):
    """dx: dy lhs-dilated by the stride, convolved with the flipped kernel (I and O swapped)."""
    n, (c_in, c_out) = W.ndim - 2, W.shape[-2:]
    sp, window = SPATIAL_AXES[n], W.shape[:-2]
    w = W.reshape(*window, c_in, groups, c_out // groups)
    w = jnp.transpose(w, (*range(n), n + 2, n + 1, n)).reshape(*window, c_out // groups, c_in * groups)
    w = lax.rev(w, tuple(range(n)))
    pads = [(d * (f - 1) - lo, (m - 1) * l + lo - s * (o - 1))
            for d, f, (lo, _), m, l, s, o in zip(g.dilation, window, g.pads, g.sizes, g.lhs_dilation,
                                                 g.stride, g.out, strict=True)]
    dxd = lax.conv_general_dilated(dy, w, (1,) * n, pads, g.stride, g.dilation,
                                   ("N" + sp + "C", sp + "IO", "N" + sp + "C"), feature_group_count=groups)
    return unpad_input(dxd, [(0, 0)] * n, g.lhs_dilation, g.sizes)


# ----------------------------------------------------------------- the layer

def _arguments(ndim, features, kernel_size, stride, padding, dilation, groups, transpose, impl, name):
    """The checked hyperparameters: (window, strides, dilation, padding, impl)."""
    window, strides = as_tuple(kernel_size, ndim, "kernel_size", name), as_tuple(stride, ndim, "stride", name)
    dilation, padding = as_tuple(dilation, ndim, "dilation", name), as_padding(padding, ndim, name)
    for arg, value in (("features", features), ("groups", groups)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    if features % groups:
        raise ValueError(f"{name}: features={features} must be divisible by groups={groups}")
    if impl not in _IMPLS:
        raise ValueError(f"{name}: impl must be one of {_IMPLS}, got {impl!r}")
    if transpose and isinstance(padding, tuple) and any(
            max(p) > d * (f - 1) for p, d, f in zip(padding, dilation, window, strict=True)):
        raise ValueError(f"{name}: explicit padding must be at most dilation * (kernel_size - 1), "
                         f"got {padding}")
    return window, strides, dilation, padding, impl


def _resolve(impl: str, groups: int, c_in: int) -> str:
    """"auto" is im2col on CPU, lax elsewhere: decided where the layer runs (when a call is
    traced), not when it is built, so one model object serves every backend. im2col with
    groups == C_in > 1 runs the element-wise "depthwise" form."""
    impl = ("im2col" if jax.default_backend() == "cpu" else "lax") if impl == "auto" else impl
    return "depthwise" if impl == "im2col" and 1 < groups == c_in else impl


def _conv(ndim: int, features: int, kernel_size: int | tuple, stride: int | tuple = 1,
          padding: str | int | tuple = "SAME", dilation: int | tuple = 1, groups: int = 1,
          use_bias: bool = True, *, transpose: bool = False, impl: str = "auto",
          W_init: Initializer = he_normal, b_init: Initializer = zeros, name: str = "Conv") -> Layer:
    window, strides, dilation, padding, impl = _arguments(
        ndim, features, kernel_size, stride, padding, dilation, groups, transpose, impl, name)
    expected = f"(B, {', '.join(SPATIAL_AXES[ndim])}, C_in)"

    def geometry(sizes):
        return _geometry(sizes, window, strides, padding, dilation, transpose)

    def init(key, in_shape):
        check_example_shape(name, in_shape, f"({expected[4:]}", rank=ndim + 1)
        if in_shape[-1] % groups:
            raise ValueError(f"{name}: C_in={in_shape[-1]} must be divisible by groups={groups}")
        g = geometry(in_shape[:-1])
        if min(g.out) < 1:
            raise ValueError(f"{name}: kernel {window} (dilation {dilation}) does not fit in the padded "
                             f"input {g.padded} of in_shape {tuple(in_shape)}")
        k1, k2 = jax.random.split(key)
        params = {"W": W_init(k1, (*window, in_shape[-1] // groups, features), jnp.float32)}
        if use_bias:
            params["b"] = b_init(k2, (features,), jnp.float32)
        return (*g.out, features), params, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train                                   # deterministic and stateless
        check_input(name, x)
        c_in = params["W"].shape[-2] * groups
        if x.ndim != ndim + 2 or x.shape[-1] != c_in:
            raise ValueError(f"{name}: expected x of shape {expected.replace('C_in', str(c_in))}, "
                             f"got {tuple(x.shape)}")
        g, W = geometry(x.shape[1:-1]), params["W"]
        mode = _resolve(impl, groups, c_in)
        if mode != "im2col":
            y, patches = (_lax_forward(x, W, g, groups) if mode == "lax" else _depthwise_forward(x, W, g)), None
        else:
            y, patches = _im2col_forward(x, W, g, groups)
        return (y + params["b"] if use_bias else y), state, (x, patches)

    def backward(params, cache, dy):
        (x, patches), W = cache, params["W"]
        g = geometry(x.shape[1:-1])
        if patches is not None:                          # the forward ran im2col
            dW, dx = _im2col_backward(W, patches, dy, g, groups)
        elif _resolve(impl, groups, x.shape[-1]) == "depthwise":
            dW, dx = _depthwise_backward(x, W, dy, g)
        else:
            dW, dx = _lax_grad_W(x, dy, g, W.shape[:-2], groups), _lax_grad_x(W, dy, g, groups)
        dparams = {"W": dW}
        if use_bias:
            dparams["b"] = dy.reshape(-1, dy.shape[-1]).sum(axis=0)       # db = sum over b and o
        return dparams, dx

    return Layer(init, forward, backward, name)


_CONV_DOC = """{n}-D convolution (cross-correlation), channels last:
    y[b, o] = sum_k xp[b, o S + k D] @ W[k] + b,  xp = x zero-padded (SAME, VALID or explicit).

Shapes: x (B, {sp}, C_in) -> y (B, {sp_out}, features);  W ({ks}, C_in/groups, features),
    b (features,);  per axis n_out = floor((n + P_lo + P_hi - D (F - 1) - 1) / S) + 1
    (SAME: ceil(n / S), extra padding on the high side). groups > 1 connects the g-th
    block of C_in/groups inputs to the g-th block of features/groups outputs only.
Backward: sums over b and o:
    dW[k] = sum xp[b, o S + k D]^T dy[b, o]   (x correlated with dy)
    dxp[o S + k D] += dy[b, o] W[k]^T           (col2im(dy W^T): the transposed convolution)
    db = sum dy[b, o];  impl "im2col" | "lax" | "auto" (module docstring; same numbers).
"""

Conv1D = variant(_conv, "Conv1D", _CONV_DOC.format(n=1, sp="L", sp_out="L_out", ks="F"), 1)
Conv2D = variant(_conv, "Conv2D", _CONV_DOC.format(n=2, sp="H, W", sp_out="H_out, W_out", ks="kh, kw"), 2)
ConvTranspose2D = variant(_conv, "ConvTranspose2D", """Transposed 2-D convolution (decoders), channels last:
    y = conv(xd, W) + b,  xd = x with stride - 1 zeros between pixels, then padded.

Padding as lax.conv_transpose / flax ConvTranspose (no kernel flip): SAME gives n_out = n S,
VALID n_out = n S + max(F - S, 0); explicit p is the padding of the forward conv this
one transposes (PyTorch): n_out = (n - 1) S - p_lo - p_hi + D (F - 1) + 1.
Shapes: x (B, H, W, C_in) -> y (B, H_out, W_out, features);
    W (kh, kw, C_in/groups, features), b (features,).
Backward: xd padded as in the forward, read at stride 1:
    dW[k] = sum xd[b, o + k D]^T dy[b, o]      dxd = col2im(dy W^T), dx = dxd[lo::S]
    db = sum dy[b, o]
""", 2, transpose=True)


CASES = (   # few distinct shapes: the gradient check compiles its random draws per shape
    Case("Conv2D-same-s1", lambda: Conv2D(2, 3), (5, 5, 2)),
    Case("Conv2D-same-s2", lambda: Conv2D(2, 3, stride=2), (5, 5, 2)),
    Case("Conv2D-valid-s1", lambda: Conv2D(2, 3, padding="VALID"), (5, 5, 2)),
    Case("Conv2D-valid-s2-rect", lambda: Conv2D(2, (3, 2), stride=(2, 1), padding="VALID"), (5, 5, 2)),
    Case("Conv2D-explicit-pad", lambda: Conv2D(2, 3, padding=((2, 0), (1, 2))), (5, 5, 2)),
    Case("Conv2D-dilation2", lambda: Conv2D(2, 3, dilation=2), (5, 5, 2)),
    Case("Conv2D-groups2", lambda: Conv2D(2, 3, stride=2, groups=2), (5, 5, 4)),
    Case("Conv2D-cin1", lambda: Conv2D(2, 3), (5, 5, 1)),
    Case("Conv2D-depthwise-s2", lambda: Conv2D(4, 3, stride=2, groups=2), (5, 5, 2)),
    Case("Conv2D-depthwise-s1", lambda: Conv2D(3, 3, padding=1, groups=3), (5, 5, 3)),
    Case("Conv2D-depthwise-x2-s2-dil2", lambda: Conv2D(4, 3, stride=2, dilation=2, groups=2), (6, 5, 2)),
    Case("Conv1D-depthwise-s2", lambda: Conv1D(2, 3, stride=2, groups=2), (7, 2)),
    Case("ConvTranspose2D-depthwise", lambda: ConvTranspose2D(2, 3, 2, "SAME", groups=2), (3, 3, 2)),
    Case("Conv2D-no-bias", lambda: Conv2D(2, 3, use_bias=False), (5, 5, 2)),
    Case("Conv2D-lax-same-s2", lambda: Conv2D(2, 3, stride=2, impl="lax"), (5, 5, 2)),
    Case("Conv2D-lax-valid-dil2", lambda: Conv2D(2, 3, padding="VALID", dilation=2, impl="lax"), (5, 5, 2)),
    Case("Conv2D-lax-groups2", lambda: Conv2D(2, 3, stride=2, groups=2, impl="lax"), (5, 5, 2)),
    Case("Conv2D-lax-explicit", lambda: Conv2D(2, 3, padding=((2, 0), (1, 2)), impl="lax"), (5, 5, 2)),
    Case("Conv1D-same", lambda: Conv1D(2, 3), (7, 2)),
    Case("Conv1D-valid-s2-dil2", lambda: Conv1D(2, 3, stride=2, padding="VALID", dilation=2), (7, 2)),
    Case("Conv1D-lax-s2", lambda: Conv1D(2, 3, stride=2, impl="lax"), (7, 2)),
    Case("ConvTranspose2D-same", lambda: ConvTranspose2D(2, 3, 2, "SAME"), (3, 3, 2)),
    Case("ConvTranspose2D-valid", lambda: ConvTranspose2D(2, 3, 2, "VALID"), (3, 3, 2)),
    Case("ConvTranspose2D-explicit", lambda: ConvTranspose2D(2, 4, 2, 1), (3, 3, 2)),
    Case("ConvTranspose2D-lax", lambda: ConvTranspose2D(2, 3, 2, "SAME", impl="lax"), (3, 3, 2)),
)
