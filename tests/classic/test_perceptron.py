"""The perceptron against a direct NumPy transcription of Rosenblatt's rule, weight for weight;
AND/OR learned, XOR not (and a two-layer fnn MLP learns it)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import classic
from fnn import layers as L

GATES = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
AND, OR, XOR = np.array([0, 0, 0, 1]), np.array([0, 1, 1, 1]), np.array([0, 1, 1, 0])


def numpy_perceptron(x, targets, eta, epochs, orders=None, W=None, b=None):
    """The textbook loop: for each sample, y_hat = step(w·x + b); w += eta (y − y_hat) x; b += ..."""
    W = np.zeros((x.shape[1], targets.shape[1])) if W is None else np.array(W, float)
    b = np.zeros(targets.shape[1]) if b is None else np.array(b, float)
    for e in range(epochs):
        for i in (range(len(x)) if orders is None else orders[e]):
            for u in range(targets.shape[1]):
                y_hat = 1.0 if x[i] @ W[:, u] + b[u] >= 0 else 0.0
                update = eta * (targets[i, u] - y_hat)
                W[:, u] += update * x[i]
                b[u] += update
    return W, b


def test_worked_update():
    """x = [1, 0.5], y = 0, y_hat = 1, eta = 0.1, w = [0.6, -0.4], b = -0.1 -> w = [0.5, -0.45], b = -0.2."""
    learner = classic.perceptron(learning_rate=0.1, epochs=1)
    params = learner.fit(np.array([[1.0, 0.5]]), np.array([0]), classes=[0, 1],
                         init={"W": [[0.6], [-0.4]], "b": [-0.1]})
    np.testing.assert_allclose(params["W"][:, 0], [0.5, -0.45], rtol=0, atol=1e-15)
    np.testing.assert_allclose(params["b"], [-0.2], rtol=0, atol=1e-15)


@pytest.mark.parametrize("gate", [AND, OR], ids=["and", "or"])
def test_learns_and_or_exactly(gate):
    learner = classic.perceptron(learning_rate=0.1, epochs=20)
    params = learner.fit(GATES, gate)
    np.testing.assert_array_equal(learner.predict(params, GATES), gate)


def test_cannot_learn_xor_but_an_mlp_can():
    learner = classic.perceptron(learning_rate=0.1, epochs=200)
    params = learner.fit(GATES, XOR)
    assert (np.asarray(learner.predict(params, GATES)) != XOR).any()   # no line separates XOR

    model = fnn.serial(L.Dense(8), L.Tanh(), L.Dense(1))
    _, mlp, state = model.init(jax.random.PRNGKey(0), (2,))
    x, y = jnp.asarray(GATES, jnp.float32), jnp.asarray(XOR, jnp.float32)[:, None]
    loss = lambda p: jnp.mean((model.apply(p, state, x)[0] - y) ** 2)
    step = jax.jit(lambda p: jax.tree.map(lambda a, g: a - 0.2 * g, p, jax.grad(loss)(p)))
    for _ in range(2000):
        mlp = step(mlp)
    pred = np.asarray(model.apply(mlp, state, x)[0][:, 0] > 0.5)
    np.testing.assert_array_equal(pred, XOR.astype(bool))


@pytest.fixture(scope="module")
def iris():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    return sklearn_datasets.load_iris(return_X_y=True)


def test_binary_matches_numpy_weight_for_weight(iris):
    x, y = iris
    keep = y < 2
    learner = classic.perceptron(learning_rate=0.05, epochs=5)
    params = learner.fit(x[keep], y[keep])
    W, b = numpy_perceptron(x[keep], (y[keep] == 1)[:, None].astype(float), 0.05, 5)
    np.testing.assert_allclose(params["W"], W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(params["b"], b, rtol=1e-12, atol=1e-12)


def test_one_vs_rest_with_shuffle_matches_numpy(iris):
    x, y = iris
    key, epochs = jax.random.PRNGKey(3), 4
    learner = classic.perceptron(learning_rate=0.1, epochs=epochs, shuffle=True)
    params = learner.fit(x, y, key=key)
    orders = [np.asarray(jax.random.permutation(jax.random.fold_in(key, e), len(x))) for e in range(epochs)]
    W, b = numpy_perceptron(x, np.eye(3)[y], 0.1, epochs, orders)
    np.testing.assert_allclose(params["W"], W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(params["b"], b, rtol=1e-12, atol=1e-12)
    z = x @ W + b
    np.testing.assert_array_equal(learner.predict(params, x), z.argmax(1))
    np.testing.assert_allclose(learner.decision_function(params, x), z, rtol=1e-12)


def test_shuffle_needs_a_key():
    with pytest.raises(ValueError, match="perceptron: shuffle=True needs a PRNG key"):
        classic.perceptron(shuffle=True).fit(GATES, AND)
