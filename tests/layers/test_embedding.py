"""Embedding: lookup, scatter-add backward, integer-input errors, fnn.manual with integer ids."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.gradcheck import check_case
from fnn.layers import LSTM, Dense, Embedding, Flatten
from fnn.layers.embedding import CASES


def test_gradcheck():
    report = check_case(CASES[0], jax.random.PRNGKey(0))
    assert report.passed, report


def test_lookup_and_scatter_add_by_hand():
    layer = Embedding(4, 2)
    params = {"W": jnp.arange(8.0).reshape(4, 2)}
    ids = jnp.array([[3, 1, 3]])
    y, _, cache = layer.forward(params, (), ids)
    np.testing.assert_array_equal(y, [[[6, 7], [2, 3], [6, 7]]])
    grads, dx = layer.backward(params, cache, jnp.ones((1, 3, 2)))
    np.testing.assert_array_equal(grads["W"], [[0, 0], [1, 1], [0, 0], [2, 2]])   # row 3 read twice
    assert dx.dtype == jax.dtypes.float0 and dx.shape == ids.shape


def test_manual_through_integer_ids(key):
    model = fnn.serial(Embedding(6, 3), Flatten(), Dense(2))
    _, params, state = model.init(key, (4,))
    ids = jnp.array([[0, 5, 5, 2], [1, 1, 0, 3]])
    loss = lambda m: lambda p: jnp.sum(m.apply(p, state, ids)[0] ** 2)      # noqa: E731
    hand, auto = jax.grad(loss(fnn.manual(model)))(params), jax.grad(loss(model))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), hand, auto)


def test_bad_ids(key):
    layer = Embedding(5, 2)
    _, params, _ = layer.init(key, (3,))
    with pytest.raises(TypeError, match="Embedding: expected integer ids, got dtype float32"):
        layer.forward(params, (), jnp.zeros((2, 3), jnp.float32))
    with pytest.raises(ValueError, match=r"Embedding: expected ids in \[0, 5\), got 0..5"):
        layer.forward(params, (), jnp.array([[0, 5]]))
    y = jax.jit(lambda i: layer.forward(params, (), i)[0])(jnp.array([[0, 7]]))     # documented: NaN
    assert np.all(np.isnan(y[0, 1])) and not np.any(np.isnan(y[0, 0]))


def test_padded_batch_through_serial(key):
    """(tokens, lengths) flows through Embedding into an LSTM; the padding tokens do not matter."""
    model = fnn.serial(Embedding(9, 4), LSTM(3))
    _, params, state = model.init(key, ((5,), ()))
    tokens, lengths = jnp.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]), jnp.array([3, 5])
    y, _ = model.apply(params, state, (tokens, lengths))
    y2, _ = model.apply(params, state, (tokens.at[0, 3:].set(8), lengths))
    np.testing.assert_allclose(y, y2, atol=0)
    loss = lambda m: lambda p: jnp.sum(m.apply(p, state, (tokens, lengths))[0] ** 2)      # noqa: E731
    hand, auto = jax.grad(loss(fnn.manual(model)))(params), jax.grad(loss(model))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7), hand, auto)
    assert np.all(np.asarray(hand[0]["W"])[0] == 0)        # only padding reads row 0: no gradient
