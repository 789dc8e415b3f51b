"""fnn.losses.perceptual: its value against a direct formula, a zero at x == y, and bad input.
The hand gradient (through the network's own backward) vs autodiff and finite differences in
float64 is the `perceptual` CASES row, run by tests/test_gradcheck.py."""
import jax
import jax.numpy as jnp
import pytest

import fnn
from fnn.layers import Conv2D, Relu

KEY = jax.random.PRNGKey(3)


@pytest.fixture(scope="module")
def tiny():
    network = fnn.serial(Conv2D(2, (3, 3)), Relu(), Conv2D(2, (3, 3)))
    _, params, state = network.init(KEY, (5, 5, 1))
    x, y = jax.random.normal(jax.random.fold_in(KEY, 1), (2, 2, 5, 5, 1), jnp.float32)
    return network, params, state, x, y


def test_value_is_the_weighted_sum_of_feature_mses(tiny):
    network, params, state, x, y = tiny
    loss = fnn.losses.perceptual(network, params, state, taps=(0, 2), layer_weights=(0.25, 3.0))
    conv1, conv2 = network.children[0], network.children[2]

    def phi(v):
        first = conv1.apply(params[0], (), v)[0]
        return first, conv2.apply(params[2], (), jnp.maximum(first, 0))[0]
    (a1, a2), (b1, b2) = phi(x), phi(y)
    expected = 0.25 * jnp.mean((a1 - b1) ** 2) + 3.0 * jnp.mean((a2 - b2) ** 2)
    assert jnp.allclose(loss(x, y), expected, rtol=1e-6)
    assert float(loss(x, x)) == 0.0 and float(jnp.abs(loss.grad(x, x)).max()) == 0.0
    assert loss.grad(x, y).shape == x.shape


def test_bad_input_names_the_loss(tiny):
    network, params, state, x, y = tiny
    with pytest.raises(ValueError, match=r"perceptual: taps must be increasing child indices in \[0, 3\), got \(5,\)"):
        fnn.losses.perceptual(network, params, state, taps=(5,))
    with pytest.raises(ValueError, match="perceptual: expected one layer weight per tap"):
        fnn.losses.perceptual(network, params, state, taps=(0, 1), layer_weights=(1.0,))
    with pytest.raises(TypeError, match="perceptual: expected a serial network"):
        fnn.losses.perceptual(Relu(), (), (), taps=(0,))
    loss = fnn.losses.perceptual(network, params, state, taps=(2,))
    with pytest.raises(ValueError, match="perceptual: x and y must have the same shape"):
        loss(x, y[:1])
