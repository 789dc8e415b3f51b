"""Dense, Flatten, Reshape: hand-computed values and errors (gradients: test_gradcheck)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import layers as L


def test_dense_hand_computed_value_and_backward():
    dense = L.Dense(2)
    params = {"W": jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), "b": jnp.array([0.5, -1.0])}
    x = jnp.array([[1.0, 0.0, -1.0]])
    y, _, cache = dense.forward(params, (), x)
    np.testing.assert_allclose(y, [[1 - 5 + 0.5, 2 - 6 - 1.0]])
    dparams, dx = dense.backward(params, cache, jnp.array([[1.0, 2.0]]))
    np.testing.assert_allclose(dparams["W"], [[1, 2], [0, 0], [-1, -2]])
    np.testing.assert_allclose(dparams["b"], [1, 2])
    np.testing.assert_allclose(dx, [[5, 11, 17]])


def test_dense_shapes_and_param_count():
    out_shape, params, _ = L.Dense(7).init(jax.random.PRNGKey(0), (4, 5))
    assert out_shape == (4, 7) and params["W"].shape == (5, 7) and params["b"].shape == (7,)
    assert params["W"].dtype == jnp.float32


@pytest.mark.parametrize("make, match", [
    (lambda: L.Dense(0), "Dense: out_dim must be a positive int, got 0"),
    (lambda: L.Dense(2.5), "Dense: out_dim must be a positive int"),
    (lambda: L.Reshape((-1, -1)), "Reshape: shape must have positive entries and at most one -1"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_dense_wrong_feature_count():
    dense = L.Dense(3)
    _, params, state = dense.init(jax.random.PRNGKey(0), (784,))
    with pytest.raises(ValueError, match=r"Dense: expected x of shape \(B, \.\.\., 784\), got \(2, 100\)"):
        dense.apply(params, state, jnp.ones((2, 100)))


def test_flatten_and_reshape_round_trip():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    flat, _, cache = L.Flatten().forward((), (), x)
    assert flat.shape == (2, 12)
    _, dx = L.Flatten().backward((), cache, flat)
    np.testing.assert_array_equal(dx, x)
    assert L.Reshape((2, -1)).init(None, (3, 4))[0] == (2, 6)
