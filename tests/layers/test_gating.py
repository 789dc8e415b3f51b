"""Gating: Multiply, multiply, squeeze_excitation, StochasticDepth (their gradient checks are the
CASES rows of fnn/layers/gating.py, run by tests/test_gradcheck.py); here hand-computed values,
torchvision's SqueezeExcitation as the oracle, and the errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.layers import Multiply, Sigmoid, StochasticDepth, multiply, squeeze_excitation


def test_multiply_broadcasts_a_gate_and_sums_its_gradient_by_hand():
    x = jnp.arange(12.0).reshape(1, 2, 2, 3)
    gate = jnp.asarray([[[[1.0, 2.0, 3.0]]]])                      # (1, 1, 1, 3)
    layer = Multiply()
    assert layer.init(None, ((2, 2, 3), (1, 1, 3)))[0] == (2, 2, 3)
    y, _, cache = layer.forward((), (), (x, gate))
    np.testing.assert_array_equal(y, x * np.array([1.0, 2.0, 3.0]))
    _, (dx, dgate) = layer.backward((), cache, jnp.ones_like(y))
    np.testing.assert_array_equal(dx, jnp.broadcast_to(gate, x.shape))
    np.testing.assert_array_equal(dgate, [[[[18.0, 22.0, 26.0]]]])  # sum of x over h, w per channel


def test_multiply_of_one_branch_gates_the_input():
    layer = multiply(Sigmoid())                                      # y = sigmoid(x) x: SiLU
    _, params, state = layer.init(jax.random.PRNGKey(0), (3,))
    x = jnp.asarray([[1.0, -2.0, 3.0]])
    y, _, cache = layer.forward(params, state, x)
    s = 1 / (1 + np.exp(-np.asarray(x)))
    np.testing.assert_allclose(y, s * x, rtol=1e-6)
    np.testing.assert_allclose(layer.backward(params, cache, jnp.ones_like(y))[1], s + x * s * (1 - s), rtol=1e-6)


def test_squeeze_excitation_equals_torchvision():
    torch = pytest.importorskip("torch")
    from _torchvision import import_torchvision
    torch.manual_seed(0)
    oracle = import_torchvision().ops.SqueezeExcitation(6, 2, activation=torch.nn.SiLU).double()
    from fnn.layers import Swish
    from fnn.paths import tree_by_path
    layer = squeeze_excitation(6, 2, activation=Swish)
    _, params, state = layer.init(jax.random.PRNGKey(0), (5, 4, 6))
    conv = lambda m: {"W": jnp.asarray(m.weight.detach().numpy().transpose(2, 3, 1, 0)),  # noqa: E731
                      "b": jnp.asarray(m.bias.detach().numpy())}
    by_path = {"fc1": conv(oracle.fc1), "fc2": conv(oracle.fc2)}
    params = ((((), (), by_path["fc1"], (), by_path["fc2"], ()), ()), ())
    assert set(tree_by_path(layer, params)) >= {"squeeze_excitation/parallel/scale/fc1"}
    x = np.random.default_rng(0).normal(size=(2, 5, 4, 6))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = oracle(xt)
    yt.backward(torch.ones_like(yt))
    y, _, cache = layer.forward(params, state, jnp.asarray(x))
    _, dx = layer.backward(params, cache, jnp.ones_like(y))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-14)


def test_stochastic_depth_keeps_or_drops_whole_examples():
    layer = StochasticDepth(0.5)
    x = jnp.ones((64, 3, 2))
    assert layer.forward((), (), x)[0] is x                        # evaluation: the identity
    y, _, cache = layer.forward((), (), x, key=jax.random.PRNGKey(1), train=True)
    per_example = np.asarray(y).reshape(64, -1)
    assert set(np.unique(per_example)) == {0.0, 2.0} and (per_example == per_example[:, :1]).all()
    np.testing.assert_array_equal(layer.backward((), cache, x)[1], y)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"Multiply: inputs must broadcast to one shape, got \(\(2, 3\), \(4,\)\)"):
        Multiply().init(None, ((2, 3), (4,)))
    with pytest.raises(ValueError, match=r"Multiply: expected a tuple of input shapes"):
        Multiply().init(None, (2, 3))
    with pytest.raises(ValueError, match=r"stochastic_depth: rate \(the probability of dropping\) must lie in"):
        StochasticDepth(1.0)
    with pytest.raises(ValueError, match=r"stochastic_depth: .*key"):
        StochasticDepth(0.2).forward((), (), jnp.ones((2, 3)), train=True)
    with pytest.raises(ValueError, match=r"squeeze_excitation: squeeze_channels must be a positive int, got 0"):
        squeeze_excitation(4, 0)
