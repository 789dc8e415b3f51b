"""Conv1D, Conv2D, ConvTranspose2D: gradients, values against lax, shapes, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from fnn.core import tree_size
from fnn.initializers import zeros
from fnn.layers.conv import Conv1D, Conv2D, ConvTranspose2D

KEY = jax.random.PRNGKey(0)


RNG = np.random.default_rng(0)


def _run(layer, in_shape, dtype=jnp.float64, batch=2):
    """y, params, x for random params and input (numpy-drawn: no per-shape RNG compiles)."""
    out_shape, params, state = layer.init(KEY, in_shape)
    params = {k: jnp.asarray(RNG.normal(size=v.shape), dtype) for k, v in params.items()}  # W_init unused
    x = jnp.asarray(RNG.normal(size=(batch, *in_shape)), dtype)
    y, _ = layer.apply(params, state, x)
    assert y.shape == (batch, *out_shape) and y.dtype == dtype
    return y, params, x


# Every CASES row of this module is gradient-checked (jitted) in tests/test_gradcheck.py.




ORACLE = [  # (Conv2D kwargs, in_shape)
    (dict(), (6, 5, 4)),
    (dict(stride=2), (7, 6, 4)),
    (dict(stride=(2, 1), padding="VALID", kernel_size=(3, 2)), (7, 5, 4)),
    (dict(padding=((2, 0), (1, 2))), (4, 5, 4)),
    (dict(padding=1, stride=2), (6, 6, 4)),
    (dict(dilation=2), (7, 6, 4)),
    (dict(dilation=(1, 2), padding="VALID"), (5, 7, 4)),
    (dict(groups=2, stride=2), (6, 5, 4)),
    (dict(groups=4), (5, 5, 4)),
    (dict(stride=2), (6, 5, 1)),                 # one input channel
]


@pytest.mark.parametrize("kwargs,in_shape,dtype", [(*row, dt) for row, dt in zip(
    ORACLE, [jnp.float64, jnp.float32] * len(ORACLE), strict=False)], ids=[str(k) for k, _ in ORACLE])
def test_conv2d_matches_lax_conv(kwargs, in_shape, dtype):
    kwargs = {"kernel_size": 3, **kwargs}
    stride, dil = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    pad = kwargs.get("padding", "SAME")
    pad = [(pad, pad)] * 2 if isinstance(pad, int) else pad
    y, p, x = _run(Conv2D(4, impl="im2col", W_init=zeros, **kwargs), in_shape, dtype)
    y_lax = Conv2D(4, impl="lax", **kwargs).apply(p, (), x)[0]
    ref = lax.conv_general_dilated(x, p["W"], (stride,) * 2 if isinstance(stride, int) else stride, pad,
                                   rhs_dilation=(dil,) * 2 if isinstance(dil, int) else dil,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                   feature_group_count=kwargs.get("groups", 1)) + p["b"]
    tol = 1e-5 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(y_lax, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("impl", ["im2col", "lax"])
def test_conv1d_matches_lax_conv(impl):
    y, p, x = _run(Conv1D(3, 3, stride=2, dilation=2, impl=impl, W_init=zeros), (11, 2))
    ref = lax.conv_general_dilated(x, p["W"], (2,), "SAME", rhs_dilation=(2,),
                                   dimension_numbers=("NHC", "HIO", "NHC")) + p["b"]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["im2col", "lax"])
@pytest.mark.parametrize("padding,lax_padding,consistent", [
    ("SAME", "SAME", False), ("VALID", "VALID", False), (1, ((1, 1), (1, 1)), True)])
def test_conv_transpose_matches_lax(padding, lax_padding, consistent, impl):
    y, p, x = _run(ConvTranspose2D(3, 4, 2, padding, impl=impl, W_init=zeros), (4, 5, 2))
    ref = lax.conv_transpose(x, p["W"], (2, 2), lax_padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                             use_consistent_padding=consistent) + p["b"]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv_transpose_explicit_padding_inverts_conv_shape():
    # PyTorch convention: ConvTranspose2D(stride 2, kernel 4, padding 1) doubles 7 -> 14
    assert ConvTranspose2D(3, 4, 2, 1, W_init=zeros).init(KEY, (7, 7, 2))[0] == (14, 14, 3)


@pytest.mark.parametrize("impl", ["im2col", "lax"])
def test_hand_computed_value(impl):
    layer = Conv2D(1, 2, padding="VALID", impl=impl)
    params = {"W": jnp.ones((2, 2, 1, 1)), "b": jnp.array([0.5])}
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    y, _, cache = layer.forward(params, (), x)
    np.testing.assert_allclose(y[0, :, :, 0], [[8.5, 12.5], [20.5, 24.5]])    # window sums + 0.5
    dparams, dx = layer.backward(params, cache, jnp.ones_like(y))
    np.testing.assert_allclose(dx[0, :, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])  # windows per pixel
    np.testing.assert_allclose(dparams["W"][:, :, 0, 0], [[8, 12], [20, 24]])      # sum of each view
    np.testing.assert_allclose(dparams["b"], [4.0])


@pytest.mark.parametrize("n,f,p,s", [(28, 3, 1, 1), (28, 3, 0, 1), (28, 5, 2, 2), (13, 3, 0, 2),
                                     (14, 3, 1, 2), (7, 1, 0, 3), (32, 7, 3, 2)])
def test_output_size_formula(n, f, p, s):
    expected = (n - f + 2 * p) // s + 1
    layer = Conv2D(5, f, stride=s, padding=p, W_init=zeros)      # no RNG compile per kernel shape
    out_shape, params, _ = layer.init(KEY, (n, n, 3))
    assert out_shape == (expected, expected, 5)
    assert layer.apply(params, (), jnp.ones((1, n, n, 3), jnp.float32))[0].shape == (1, *out_shape)


@pytest.mark.parametrize("f,c_in,c_out", [(3, 1, 32), (3, 32, 64), (5, 3, 8), (1, 16, 4)])
def test_parameter_count(f, c_in, c_out):
    _, params, _ = Conv2D(c_out, f, W_init=zeros).init(KEY, (8, 8, c_in))
    assert tree_size(params) == f * f * c_in * c_out + c_out
    assert params["W"].dtype == params["b"].dtype == jnp.float32
    no_bias = Conv2D(c_out, f, use_bias=False, W_init=zeros).init(KEY, (8, 8, c_in))[1]
    assert tree_size(no_bias) == f * f * c_in * c_out


def test_im2col_and_lax_agree_on_both_passes_float32():
    shape, dy_shape = (4, 14, 14, 8), (4, 7, 7, 16)
    x = jnp.asarray(RNG.normal(size=shape), jnp.float32)
    dy = jnp.asarray(RNG.normal(size=dy_shape), jnp.float32)
    params = {"W": jnp.asarray(RNG.normal(size=(3, 3, 8, 16)), jnp.float32), "b": jnp.full((16,), 0.5)}
    results = []
    for impl in ("im2col", "lax"):
        layer = Conv2D(16, 3, stride=2, impl=impl)
        y, _, cache = layer.forward(params, (), x)
        results.append((y, *jax.tree.leaves(layer.backward(params, cache, dy))))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kwargs,pads", [
    (dict(kernel_size=3), ((1, 1), (1, 1))),
    (dict(kernel_size=(3, 2), stride=(2, 1), padding="VALID"), ((0, 0), (0, 0))),
    (dict(kernel_size=3, stride=2, dilation=2, padding=((2, 0), (1, 2))), ((2, 0), (1, 2))),
])
def test_im2col_patches_are_the_padded_windows_row_major(kwargs, pads):
    """patches[b, o, k C + c] = xp[b, o S + k D, c], k over the kernel offsets in row-major order."""
    layer = Conv2D(2, impl="im2col", **kwargs)
    _, params, x = _run(layer, (7, 6, 3))
    _, _, (_, patches) = layer.forward(params, (), x)
    (kh, kw), (sh, sw), (dh, dw) = (np.broadcast_to(kwargs.get(a, 1), 2)
                                    for a in ("kernel_size", "stride", "dilation"))
    xp = np.pad(np.asarray(x), ((0, 0), *pads, (0, 0)))
    expected = np.zeros(patches.shape)
    for i, j in np.ndindex(*patches.shape[1:3]):
        rows, cols = i * sh + dh * np.arange(kh), j * sw + dw * np.arange(kw)
        expected[:, i, j] = xp[:, rows][:, :, cols].reshape(x.shape[0], -1)      # (B, kh, kw, C) flattened
    np.testing.assert_array_equal(patches, expected)


def test_auto_picks_im2col_on_cpu():
    layer = Conv2D(2, 3, W_init=zeros)
    _, params, _ = layer.init(KEY, (5, 5, 2))
    _, patches = layer.forward(params, (), jnp.ones((1, 5, 5, 2), jnp.float32))[2]   # (x, patches)
    assert patches.shape == (1, 5, 5, 18)


@pytest.mark.parametrize("make,shape,match", [
    (lambda: Conv2D(4, 3, W_init=zeros), (2, 28, 28),
     r"Conv2D: expected x of shape \(B, H, W, 1\), got \(2, 28, 28\)"),
    (lambda: Conv2D(4, 3, W_init=zeros), (2, 8, 8, 3),
     r"Conv2D: expected x of shape \(B, H, W, 1\), got \(2, 8, 8, 3\)"),
    (lambda: Conv1D(4, 3, W_init=zeros), (2, 8, 8, 1), r"Conv1D: expected x of shape \(B, L, 1\)"),
])
def test_bad_input_names_layer_and_shapes(make, shape, match):
    layer = make()
    _, params, state = layer.init(KEY, (8, 8, 1) if layer.name == "Conv2D" else (8, 1))
    with pytest.raises(ValueError, match=match):
        layer.apply(params, state, jnp.ones(shape, jnp.float32))


@pytest.mark.parametrize("make,match", [
    (lambda: Conv2D(4, 0), "kernel_size must be a positive int"),
    (lambda: Conv2D(4, (3, 3, 3)), "kernel_size must be a positive int or 2"),
    (lambda: Conv2D(4, 3, padding="FULL"), "padding must be"),
    (lambda: Conv2D(4, 3, padding=-1), "padding must be"),
    (lambda: Conv2D(5, 3, groups=2), r"^Conv2D: features=5 must be divisible by groups=2$"),
    (lambda: Conv2D(0, 3), r"^Conv2D: features must be a positive int, got 0$"),
    (lambda: Conv2D(4, 3, groups=0), r"^Conv2D: groups must be a positive int, got 0$"),
    (lambda: Conv2D(4, 3, impl="cuda"), r"^Conv2D: impl must be one of \('auto', 'im2col', 'lax'\), got 'cuda'$"),
    (lambda: ConvTranspose2D(4, 3, 2, 3), "explicit padding must be at most"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_in_shape_at_init():
    with pytest.raises(ValueError, match=r"Conv2D: expected in_shape \(H, W, C_in\)"):
        Conv2D(4, 3, W_init=zeros).init(KEY, (28, 28))
    with pytest.raises(ValueError, match="divisible by groups=2"):
        Conv2D(4, 3, groups=2, W_init=zeros).init(KEY, (8, 8, 3))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(4, 5, padding="VALID", W_init=zeros).init(KEY, (3, 3, 1))


def test_auto_impl_is_decided_where_the_layer_runs(monkeypatch):
    layer = Conv2D(2, 3)                                 # built on the CPU backend
    _, params, state = layer.init(KEY, (5, 5, 1))
    x = jnp.ones((1, 5, 5, 1), jnp.float32)
    assert layer.forward(params, state, x)[2][1] is not None          # im2col keeps its patches
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert layer.forward(params, state, x)[2][1] is None              # lax.conv keeps none
