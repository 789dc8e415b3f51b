"""fnn.layers.Reversible: the cache holds only the output, the inputs are recomputed from it, a
hand-computed coupling, fnn.manual's jax.grad equals backward, and bad input. Its gradient checks
against autodiff and finite differences are its CASES rows (tests/test_gradcheck.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import gradcheck, manual, serial
from fnn import layers as L
from fnn.layers import reversible
from fnn.layers.reversible import _recompute

X = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 4), jnp.float64)


def _mlp():
    return serial(L.Dense(5), L.Tanh(), L.Dense(2))


LAYER = reversible.Reversible(_mlp(), _mlp(), _mlp(), _mlp())
_, PARAMS, STATE = LAYER.init(jax.random.PRNGKey(0), (2, 4))
PARAMS = jax.tree.map(lambda a: a.astype(jnp.float64), PARAMS)


def test_cache_holds_only_the_output():
    y, _, cache = LAYER.forward(PARAMS, STATE, X)
    assert sorted(cache) == ["key", "state", "y"] and cache["y"] is y and cache["key"] is None
    arrays = [a for a in jax.tree.leaves(cache) if hasattr(a, "shape")]
    assert arrays == [y]                      # the four MLPs' activations are not kept
    assert "train" in LAYER.forward(PARAMS, STATE, X, train=True)[2]


def test_the_inputs_are_recovered_from_the_outputs():
    y, _, _ = LAYER.forward(PARAMS, STATE, X)
    y1, y2 = y[..., :2], y[..., 2:]
    children = LAYER.children
    for i in (2, 0):                          # walk back through the two couplings
        y1, y2, _, _ = _recompute(children[i:i + 2], PARAMS[i:i + 2], STATE[i:i + 2], [None, None], False, y1, y2)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], -1), X, rtol=0, atol=1e-13)


def test_hand_computed_coupling():
    """F = Dense with W = 2I, G = Dense with W = -I (no biases): y1 = x1 + 2 x2, y2 = x2 - y1."""
    layer = reversible.Reversible(L.Dense(1, use_bias=False), L.Dense(1, use_bias=False))
    params = ({"W": jnp.array([[2.0]])}, {"W": jnp.array([[-1.0]])})
    y, _, cache = layer.forward(params, ((), ()), jnp.array([[1.0, 3.0]]))
    np.testing.assert_allclose(y, [[7.0, -4.0]])
    dparams, dx = layer.backward(params, cache, jnp.array([[1.0, 1.0]]))
    # dy1 total = 1 + (-1)(1) = 0, so dx1 = 0, dW_F = x2 * 0 = 0, dx2 = 1 + 2 * 0 = 1, dW_G = y1 * 1 = 7
    np.testing.assert_allclose(dx, [[0.0, 1.0]])
    np.testing.assert_allclose(dparams[0]["W"], [[0.0]])
    np.testing.assert_allclose(dparams[1]["W"], [[7.0]])


def test_manual_grad_runs_the_recomputing_backward():
    loss = lambda p, x: jnp.sum(jnp.sin(manual(LAYER).apply(p, STATE, x)[0]))
    grads, dx = jax.grad(loss, argnums=(0, 1))(PARAMS, X)
    y, _, cache = LAYER.forward(PARAMS, STATE, X)
    hand_params, hand_dx = LAYER.backward(PARAMS, cache, jnp.cos(y))
    assert gradcheck.relative_error((grads, dx), (hand_params, hand_dx)) < 1e-12


def test_bad_input_names_the_layer():
    with pytest.raises(TypeError, match=r"^reversible: expected Layers in pairs F_1, G_1, F_2, G_2, \.\.\., got 3"):
        reversible.Reversible(_mlp(), _mlp(), _mlp())
    with pytest.raises(ValueError, match=r"^reversible: expected in_shape \(\.\.\., 2C\) with an even last axis, "
                                         r"got \(5,\)"):
        reversible.Reversible(_mlp(), _mlp()).init(jax.random.PRNGKey(0), (5,))
    with pytest.raises(ValueError, match=r"^reversible: each F and G must keep the shape \(2,\) of a half, "
                                         r"got \(3,\)"):
        reversible.Reversible(L.Dense(3), L.Dense(2)).init(jax.random.PRNGKey(0), (4,))
    with pytest.raises(ValueError, match=r"^reversible/serial_1/Dense_1: expected x of shape \(B, \.\.\., 2\)"):
        LAYER.forward(PARAMS, STATE, jnp.ones((3, 2, 6)))
