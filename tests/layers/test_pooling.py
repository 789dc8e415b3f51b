"""Max, average and global pooling: gradients, values against lax.reduce_window, ties, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from fnn.layers.pooling import (
    AvgPool1D,
    AvgPool2D,
    GlobalAvgPool,
    GlobalMaxPool,
    MaxPool1D,
    MaxPool2D,
)

KEY = jax.random.PRNGKey(0)
RNG = np.random.default_rng(0)


# Every CASES row of this module is gradient-checked (jitted) in tests/test_gradcheck.py.




def _reduce_window(kind, x, window, stride, padding):
    """The oracle: lax.reduce_window max, or sum / window size (padding counted as zeros)."""
    dims, strides = (1, *window, 1), (1, *(stride or window), 1)
    pad = padding if isinstance(padding, str) else [(0, 0), *padding, (0, 0)]
    if kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, pad)
    with jax.numpy_dtype_promotion("standard"):
        return lax.reduce_window(x, 0.0, lax.add, dims, strides, pad) / np.prod(window)


ORACLE = [  # (kind, make, window, stride, padding, in_shape)
    ("max", lambda: MaxPool2D(2), (2, 2), None, "VALID", (6, 4, 3)),
    ("max", lambda: MaxPool2D(2), (2, 2), None, "VALID", (7, 5, 3)),            # tiled, with a crop
    ("max", lambda: MaxPool2D(3, 2, "SAME"), (3, 3), (2, 2), "SAME", (7, 6, 3)),
    ("max", lambda: MaxPool2D((3, 2), 1), (3, 2), (1, 1), "VALID", (5, 5, 3)),
    ("max", lambda: MaxPool2D(2, 2, ((1, 0), (0, 1))), (2, 2), (2, 2), ((1, 0), (0, 1)), (5, 5, 3)),
    ("max", lambda: MaxPool1D(3, 2, "SAME"), (3,), (2,), "SAME", (9, 3)),
    ("avg", lambda: AvgPool2D(2), (2, 2), None, "VALID", (6, 4, 3)),
    ("avg", lambda: AvgPool2D(3, 2, "SAME"), (3, 3), (2, 2), "SAME", (7, 6, 3)),
    ("avg", lambda: AvgPool2D((2, 3), 1, 1), (2, 3), (1, 1), ((1, 1), (1, 1)), (4, 5, 3)),
    ("avg", lambda: AvgPool1D(2), (2,), None, "VALID", (9, 3)),
]


@pytest.mark.parametrize("kind,make,window,stride,padding,in_shape", ORACLE,
                         ids=[f"{r[0]}-{r[2]}-{r[3]}-{r[4]}-{r[5]}" for r in ORACLE])
def test_matches_reduce_window(kind, make, window, stride, padding, in_shape):
    layer = make()
    out_shape = layer.init(KEY, in_shape)[0]
    x = jnp.asarray(RNG.normal(size=(2, *in_shape)))
    y, _ = layer.apply((), (), x)
    assert y.shape == (2, *out_shape)
    np.testing.assert_allclose(y, _reduce_window(kind, x, window, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make,window,stride,padding", [
    (lambda: MaxPool2D(2), (2, 2), None, "VALID"),                       # tiled path
    (lambda: MaxPool2D(3, 1, "SAME"), (3, 3), (1, 1), "SAME"),           # overlapping windows
    (lambda: MaxPool2D(3, 2, "VALID"), (3, 3), (2, 2), "VALID"),
])
def test_max_pool_ties_go_to_the_first_maximum_as_reduce_window_vjp(make, window, stride, padding):
    x = jnp.asarray(RNG.integers(0, 3, size=(2, 6, 6, 2)), jnp.float64)    # plenty of ties
    layer = make()
    y, _, cache = layer.forward((), (), x)
    dy = jnp.asarray(RNG.normal(size=y.shape))
    _, dx = layer.backward((), cache, dy)
    _, vjp = jax.vjp(lambda x: _reduce_window("max", x, window, stride, padding), x)
    np.testing.assert_allclose(dx, vjp(dy)[0], rtol=1e-12, atol=1e-12)


TILED = [  # (make, window, in_shape): stride == window, no padding, the `_tiles` backward
    (lambda: MaxPool2D(2), (2, 2), (6, 6, 2)),
    (lambda: MaxPool2D(2), (2, 2), (7, 5, 2)),                             # a crop
    (lambda: MaxPool2D((2, 3)), (2, 3), (6, 7, 2)),                        # rectangular, a crop
    (lambda: MaxPool1D(3), (3,), (10, 2)),
]


@pytest.mark.parametrize("make,window,in_shape", TILED, ids=[f"{r[1]}-{r[2]}" for r in TILED])
def test_tiled_max_pool_all_equal_windows_send_dy_to_their_first_element(make, window, in_shape):
    x = jnp.full((2, *in_shape), 1.5, jnp.float64)
    layer = make()
    y, _, cache = layer.forward((), (), x)
    dy = jnp.asarray(RNG.normal(size=y.shape))
    expected = np.zeros(x.shape)
    expected[(slice(None), *(slice(0, o * w, w) for o, w in zip(y.shape[1:-1], window)))] = dy
    np.testing.assert_array_equal(layer.backward((), cache, dy)[1], expected)


@pytest.mark.parametrize("make,window,in_shape", TILED, ids=[f"{r[1]}-{r[2]}" for r in TILED])
def test_tiled_max_pool_backward_equals_autodiff_and_reduce_window_vjp(make, window, in_shape):
    """Random inputs (no ties): jax.vjp of the layer's forward; ties: lax.reduce_window's VJP."""
    layer = make()
    for x, oracle in ((RNG.normal(size=(2, *in_shape)), lambda x: layer.apply((), (), x)[0]),
                      (RNG.integers(0, 3, size=(2, *in_shape)),
                       lambda x: _reduce_window("max", x, window, None, "VALID"))):
        x = jnp.asarray(x, jnp.float64)
        y, _, cache = layer.forward((), (), x)
        dy = jnp.asarray(RNG.normal(size=y.shape))
        _, vjp = jax.vjp(oracle, x)
        np.testing.assert_allclose(layer.backward((), cache, dy)[1], vjp(dy)[0], rtol=1e-12, atol=1e-12)


def test_hand_computed_values():
    x = jnp.array([[1.0, 2.0], [4.0, 3.0]]).reshape(1, 2, 2, 1)
    for layer, value, grad in [(MaxPool2D(2), 4.0, [[0, 0], [1, 0]]),
                               (AvgPool2D(2), 2.5, [[0.25, 0.25], [0.25, 0.25]])]:
        y, _, cache = layer.forward((), (), x)
        np.testing.assert_allclose(y.reshape(()), value)
        _, dx = layer.backward((), cache, jnp.ones_like(y))
        np.testing.assert_allclose(dx.reshape(2, 2), grad)
    x = jnp.array([[1.0, 5.0, 5.0], [0.0, -1.0, 2.0]]).reshape(1, 2, 3, 1)   # a tie at 5
    y, _, cache = GlobalMaxPool().forward((), (), x)
    np.testing.assert_allclose(y, [[5.0]])
    np.testing.assert_allclose(GlobalMaxPool().backward((), cache, jnp.ones((1, 1)))[1].reshape(2, 3),
                               [[0, 1, 0], [0, 0, 0]])                          # the first 5 gets it


def test_global_pools_match_numpy():
    x = RNG.normal(size=(2, 3, 4, 5))
    np.testing.assert_allclose(GlobalAvgPool().apply((), (), jnp.asarray(x))[0], x.mean(axis=(1, 2)))
    np.testing.assert_allclose(GlobalMaxPool().apply((), (), jnp.asarray(x))[0], x.max(axis=(1, 2)))
    assert GlobalAvgPool().init(KEY, (3, 4, 5))[0] == (5,)


@pytest.mark.parametrize("make,in_shape,out_shape", [
    (lambda: MaxPool2D(2), (28, 28, 32), (14, 14, 32)),
    (lambda: MaxPool2D(2), (5, 5, 1), (2, 2, 1)),
    (lambda: MaxPool2D(3, 2), (7, 7, 1), (3, 3, 1)),
    (lambda: AvgPool2D(3, 2, "SAME"), (7, 7, 1), (4, 4, 1)),
    (lambda: AvgPool2D(2, 1, 1), (4, 4, 1), (5, 5, 1)),
    (lambda: MaxPool1D(4), (10, 3), (2, 3)),
])
def test_output_shapes(make, in_shape, out_shape):
    assert make().init(KEY, in_shape)[0] == out_shape


@pytest.mark.parametrize("make,shape,match", [
    (lambda: MaxPool2D(2), (2, 28, 28), r"MaxPool2D: expected x of shape \(B, H, W, C\), got \(2, 28, 28\)"),
    (lambda: AvgPool1D(2), (2, 8, 8, 1), r"AvgPool1D: expected x of shape \(B, L, C\)"),
    (GlobalAvgPool, (2, 8), r"GlobalAvgPool: expected x of shape \(B, \*spatial, C\)"),
])
def test_bad_input_names_layer_and_shapes(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make().apply((), (), jnp.ones(shape, jnp.float32))


def test_bad_hyperparameters_and_in_shapes():
    with pytest.raises(ValueError, match="MaxPool2D: window must be a positive int"):
        MaxPool2D(0)
    with pytest.raises(ValueError, match="AvgPool2D: padding must be"):
        AvgPool2D(2, padding="FULL")
    with pytest.raises(ValueError, match=r"MaxPool2D: expected in_shape \(H, W, C\)"):
        MaxPool2D(2).init(KEY, (28, 28))
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2D(4).init(KEY, (3, 3, 1))


# ----------------------------------------------------------------- AdaptiveAvgPool2D

@pytest.mark.parametrize("in_hw,out", [((7, 5), (3, 2)), ((2, 3), (7, 7)), ((5, 5), (1, 1)), ((6, 4), (6, 4))])
def test_adaptive_avg_pool_matches_torch(in_hw, out):
    """torch.nn.functional.adaptive_avg_pool2d is the oracle: values and (autograd) input gradients."""
    torch = pytest.importorskip("torch")
    from fnn.layers.pooling import AdaptiveAvgPool2D
    layer = AdaptiveAvgPool2D(out)
    x, dy = RNG.normal(size=(2, *in_hw, 3)), RNG.normal(size=(2, *out, 3))
    y, _, cache = layer.forward((), (), jnp.asarray(x))
    _, dx = layer.backward((), cache, jnp.asarray(dy))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, out)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)


def test_adaptive_avg_pool_hand_computed_and_errors():
    from fnn.layers.pooling import AdaptiveAvgPool2D
    x = jnp.arange(5.0).reshape(1, 1, 5, 1)            # W = 5 into 2 bins: [0, 3) and [2, 5)
    y, _ = AdaptiveAvgPool2D((1, 2)).apply((), (), x)
    np.testing.assert_allclose(y.reshape(-1), [1.0, 3.0])
    assert AdaptiveAvgPool2D(7).init(KEY, (1, 1, 4))[0] == (7, 7, 4)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2D: output_size must be a positive int or 2"):
        AdaptiveAvgPool2D((7, 0))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2D: expected x of shape \(B, H, W, C\), got \(2, 5, 3\)"):
        AdaptiveAvgPool2D(2).apply((), (), jnp.zeros((2, 5, 3)))
