"""fnn.layers.activation: gradient checks, values, caches, PRelu and bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations as A
from fnn import gradcheck
from fnn import layers as L
from fnn.layers import activation

NAMES = [c.name for c in activation.CASES]
# (layer factory, the function it wraps, options): layer output == function output.
WRAPS = [
    (L.Sigmoid, A.sigmoid, {}), (L.Tanh, A.tanh, {}), (L.Relu, A.relu, {}),
    (L.LeakyRelu, A.leaky_relu, {"alpha": 0.2}), (L.Elu, A.elu, {"alpha": 0.5}), (L.Selu, A.selu, {}),
    (L.Gelu, A.gelu, {"approximate": True}), (L.Swish, A.swish, {}), (L.Mish, A.mish, {}),
    (L.Softplus, A.softplus, {}), (L.Softmax, A.softmax, {"axis": 1}),
    (L.LogSoftmax, A.log_softmax, {}),
]
X = jax.random.normal(jax.random.PRNGKey(3), (3, 5), jnp.float64)


@pytest.mark.parametrize("case", activation.CASES, ids=NAMES)
def test_backward_matches_autodiff_and_finite_differences(case):
    report = gradcheck.check_case(case, jax.random.PRNGKey(11))
    assert report.autodiff_error < 1e-9, report
    assert report.fd_error < 1e-6, report
    assert report.passed


@pytest.mark.parametrize(("factory", "function", "options"), WRAPS, ids=[w[0].__name__ for w in WRAPS])
def test_layer_applies_its_function_and_caches_what_backward_reads(factory, function, options):
    layer = factory(**options)
    out_shape, params, state = layer.init(jax.random.PRNGKey(0), (5,))
    y, new_state, cache = layer.forward(params, state, X)
    assert out_shape == (5,) and params == () and state == () and new_state == ()
    np.testing.assert_array_equal(y, function(X, **options))
    assert cache is (X if function.reads == "x" else y)          # exactly what backward reads


@pytest.mark.parametrize("factory", [w[0] for w in WRAPS] + [L.PRelu], ids=lambda f: f.__name__)
def test_integer_input_raises_type_error_naming_the_layer(factory):
    layer = factory()
    _, params, state = layer.init(jax.random.PRNGKey(0), (5,))
    with pytest.raises(TypeError, match=rf"^{factory.__name__}: expected a floating-point array"):
        layer.forward(params, state, jnp.ones((3, 5), jnp.int32))


def test_prelu_hand_computed_value_and_gradient():
    layer = L.PRelu()
    out_shape, params, state = layer.init(jax.random.PRNGKey(0), (2, 3))
    assert out_shape == (2, 3) and params["alpha"].shape == (3,) and state == ()
    np.testing.assert_array_equal(params["alpha"], [0.25, 0.25, 0.25])
    params = {"alpha": jnp.array([0.25, 0.5, 0.1])}
    x = jnp.array([[[-2.0, 3.0, -1.0], [4.0, -2.0, 0.5]]])
    y, _, cache = layer.forward(params, state, x)
    np.testing.assert_allclose(y, [[[-0.5, 3.0, -0.1], [4.0, -1.0, 0.5]]])
    dparams, dx = layer.backward(params, cache, jnp.ones_like(x))
    np.testing.assert_allclose(dparams["alpha"], [-2.0, -2.0, -1.0])    # sum of min(x, 0) per channel
    np.testing.assert_allclose(dx, [[[0.25, 1.0, 0.1], [1.0, 0.5, 1.0]]])


def test_prelu_rejects_a_wrong_channel_count():
    layer = L.PRelu()
    _, params, state = layer.init(jax.random.PRNGKey(0), (4,))
    with pytest.raises(ValueError, match=r"PRelu: expected x of shape \(B, \.\.\., 4\), got \(3, 5\)"):
        layer.forward(params, state, X)


def test_softmax_layer_rejects_the_batch_axis_and_bad_axes():
    with pytest.raises(ValueError, match="Softmax: axis must be an int naming a non-batch axis"):
        L.Softmax(axis=0)
    with pytest.raises(ValueError, match="LogSoftmax: axis 2 is out of range"):
        L.LogSoftmax(axis=2).init(jax.random.PRNGKey(0), (5,))
    with pytest.raises(ValueError, match=r"Softmax: axis -2 is not a non-batch axis of x of shape \(3, 5\)"):
        L.Softmax(axis=-2).forward((), (), X)
    with pytest.raises(ValueError, match="LeakyRelu: alpha must be a real number"):
        L.LeakyRelu(alpha="0.1")


def test_docstrings_give_formula_shapes_and_backward():
    for factory in [w[0] for w in WRAPS] + [L.PRelu]:
        doc = factory.__doc__
        assert "=" in doc.splitlines()[0] and "Shapes:" in doc and "Backward:" in doc, factory.__name__
        assert len(doc.splitlines()) <= 15


def test_swish_beta_fixed_and_learnable_hand_values():
    x = jnp.array([[0.0, 1.0, -2.0]], jnp.float32)                   # float32, as the parameter
    s = 1 / (1 + np.exp(-2.0 * np.array([0.0, 1.0, -2.0])))        # sigmoid(beta x), beta = 2
    fixed = L.Swish(beta=2.0)
    y, _, _ = fixed.forward((), (), x)
    np.testing.assert_allclose(y, [[0.0, s[1], -2 * s[2]]], rtol=1e-6)
    learnable = L.Swish(2.0, learnable=True)
    out_shape, params, state = learnable.init(jax.random.PRNGKey(0), (3,))
    assert out_shape == (3,) and params["beta"].shape == () and float(params["beta"]) == 2.0
    y2, _, cache = learnable.forward(params, state, x)
    np.testing.assert_allclose(y2, y, rtol=1e-6)
    dparams, dx = learnable.backward(params, cache, jnp.ones_like(x))
    xs = np.array([0.0, 1.0, -2.0])
    np.testing.assert_allclose(dparams["beta"], np.sum(xs ** 2 * s * (1 - s)), rtol=1e-5)   # d/dbeta
    np.testing.assert_allclose(dx[0], s * (1 + 2.0 * xs * (1 - s)), rtol=1e-5)
    assert L.Swish().forward((), (), x)[0].tolist() == A.silu(x).tolist()      # beta = 1 is SiLU


def test_swish_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"^Swish: expected a real beta and a bool learnable, got beta='1'"):
        L.Swish(beta="1")
    with pytest.raises(ValueError, match=r"^Swish: expected a real beta and a bool learnable, .*learnable=1"):
        L.Swish(learnable=1)
    with pytest.raises(TypeError, match=r"^Swish: expected a floating-point array"):
        L.Swish(learnable=True).forward({"beta": jnp.asarray(1.0)}, (), jnp.ones((2, 3), jnp.int32))
