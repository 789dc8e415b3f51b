"""BatchNorm, LayerNorm, GroupNorm: gradients, values against numpy, running statistics, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.layers.norm import BatchNorm, GroupNorm, LayerNorm

KEY = jax.random.PRNGKey(0)
RNG = np.random.default_rng(0)


# Every CASES row of this module is gradient-checked (jitted) in tests/test_gradcheck.py.




def _affine(c):
    return {"gamma": jnp.asarray(RNG.normal(size=c) + 1.0), "beta": jnp.asarray(RNG.normal(size=c))}


def _standardize(x, axes, eps=1e-5):
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def test_batchnorm_train_matches_numpy_and_updates_running_stats():
    x = RNG.normal(2.0, 3.0, size=(4, 3, 5, 2))
    p = _affine(2)
    state = {"mean": jnp.array([0.5, -1.0]), "var": jnp.array([2.0, 0.5])}
    y, new_state = BatchNorm(momentum=0.8).apply(p, state, jnp.asarray(x), train=True)
    expected = np.asarray(p["gamma"]) * _standardize(x, (0, 1, 2)) + np.asarray(p["beta"])
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    n = 4 * 3 * 5
    np.testing.assert_allclose(new_state["mean"], 0.8 * np.array([0.5, -1.0]) + 0.2 * x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(new_state["var"],   # unbiased batch variance into the running var
                               0.8 * np.array([2.0, 0.5]) + 0.2 * x.var(axis=(0, 1, 2)) * n / (n - 1))


def test_batchnorm_hand_computed_value():
    x = jnp.array([[1.0], [3.0]], jnp.float32)      # mean 2, biased var 1, unbiased var 2
    layer = BatchNorm()
    _, params, state = layer.init(KEY, (1,))
    y, state = layer.apply(params, state, x, train=True)
    np.testing.assert_allclose(y[:, 0], np.array([-1.0, 1.0]) / np.sqrt(1 + 1e-5), rtol=1e-6)
    np.testing.assert_allclose(state["mean"], [0.1 * 2.0])          # 0.9 * 0 + 0.1 * 2
    np.testing.assert_allclose(state["var"], [0.9 * 1.0 + 0.1 * 2.0])


def test_batchnorm_eval_uses_running_stats_and_keeps_state():
    x = jnp.asarray(RNG.normal(size=(5, 3)))
    p = _affine(3)
    state = {"mean": jnp.array([0.3, -0.2, 1.0]), "var": jnp.array([0.5, 2.0, 1.5])}
    y, same = BatchNorm().apply(p, state, x, train=False)
    expected = p["gamma"] * (x - state["mean"]) / jnp.sqrt(state["var"] + 1e-5) + p["beta"]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert same is state or all(np.array_equal(same[k], state[k]) for k in state)
    y_train, _ = BatchNorm().apply(p, state, x, train=True)
    assert not np.allclose(y, y_train)


def test_batchnorm_running_stats_converge_in_a_jitted_loop():
    layer = BatchNorm(momentum=0.5)
    _, params, state = layer.init(KEY, (2,))
    x = jnp.asarray(RNG.normal([1.0, -2.0], [2.0, 0.5], size=(64, 2)), jnp.float32)
    step = jax.jit(lambda s: layer.apply(params, s, x, train=True)[1])
    for _ in range(40):
        state = step(state)
    assert state["mean"].dtype == state["var"].dtype == jnp.float32       # state keeps its dtype
    np.testing.assert_allclose(state["mean"], x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(state["var"], x.var(axis=0, ddof=1), rtol=1e-5)


def test_batchnorm_eval_backward_is_a_per_channel_scale():
    layer = BatchNorm()
    _, params, state = layer.init(KEY, (3,))
    state = {"mean": jnp.zeros(3, jnp.float32), "var": jnp.full((3,), 3.0, jnp.float32)}
    x = jnp.ones((2, 3), jnp.float32)
    _, _, cache = layer.forward(params, state, x)
    _, dx = layer.backward(params, cache, jnp.ones_like(x))
    np.testing.assert_allclose(dx, np.full((2, 3), 1 / np.sqrt(3.0 + 1e-5)), rtol=1e-6)


def test_layernorm_matches_numpy():
    x = RNG.normal(size=(3, 4, 6))
    p = _affine(6)
    y, _ = LayerNorm().apply(p, (), jnp.asarray(x))
    np.testing.assert_allclose(y, np.asarray(p["gamma"]) * _standardize(x, -1) + np.asarray(p["beta"]),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_groupnorm_matches_numpy(groups):
    x = RNG.normal(size=(2, 3, 4, 6))
    p = _affine(6)
    y, _ = GroupNorm(groups).apply(p, (), jnp.asarray(x))
    xg = x.reshape(2, 3, 4, groups, 6 // groups)
    expected = _standardize(xg, (1, 2, 4)).reshape(x.shape) * np.asarray(p["gamma"]) + np.asarray(p["beta"])
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


def test_hand_computed_layernorm_and_groupnorm():
    p = {"gamma": jnp.ones(2), "beta": jnp.zeros(2)}
    x = jnp.array([[1.0, 3.0]])
    np.testing.assert_allclose(LayerNorm(eps=1e-12).apply(p, (), x)[0], [[-1.0, 1.0]])
    x = jnp.array([[[1.0, 3.0], [5.0, 7.0]]])            # (B=1, L=2, C=2); one group: mean 4, var 5
    np.testing.assert_allclose(GroupNorm(1, eps=1e-12).apply(p, (), x)[0],
                               (np.array([[[1.0, 3.0], [5.0, 7.0]]]) - 4.0) / np.sqrt(5.0))


def test_params_state_and_shapes():
    out_shape, params, state = BatchNorm().init(KEY, (5, 5, 8))
    assert out_shape == (5, 5, 8)
    assert {k: v.shape for k, v in params.items()} == {"gamma": (8,), "beta": (8,)}
    assert {k: v.shape for k, v in state.items()} == {"mean": (8,), "var": (8,)}
    assert all(v.dtype == jnp.float32 for v in jax.tree.leaves((params, state)))
    assert LayerNorm().init(KEY, (7, 4))[1]["gamma"].shape == (4,)
    assert GroupNorm(2).init(KEY, (3, 3, 4))[2] == ()


@pytest.mark.parametrize("make,shape,match", [
    (BatchNorm, (2, 28, 5), r"BatchNorm: expected x of shape \(B, \.\.\., 3\), got \(2, 28, 5\)"),
    (LayerNorm, (2, 4), r"LayerNorm: expected x of shape \(B, \.\.\., 3\), got \(2, 4\)"),
    (lambda: GroupNorm(3), (2, 5, 6), r"GroupNorm: expected x of shape \(B, \.\.\., 3\)"),
])
def test_bad_input_names_layer_and_shapes(make, shape, match):
    layer = make()
    _, params, state = layer.init(KEY, (3,))
    with pytest.raises(ValueError, match=match):
        layer.apply(params, state, jnp.ones(shape, jnp.float32))


def test_bad_hyperparameters_and_in_shapes():
    with pytest.raises(ValueError, match=r"^BatchNorm: momentum must lie in \[0, 1\), got 1.5$"):
        BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"^GroupNorm: eps must be positive, got 0$"):
        GroupNorm(2, eps=0)
    with pytest.raises(ValueError, match=r"^LayerNorm: eps must be positive, got -1.0$"):
        LayerNorm(eps=-1.0)
    with pytest.raises(ValueError, match="GroupNorm: groups must be a positive int"):
        GroupNorm(0)
    with pytest.raises(ValueError, match="GroupNorm: channels 6 not divisible by groups=4"):
        GroupNorm(4).init(KEY, (3, 6))
    with pytest.raises(ValueError, match=r"LayerNorm: expected in_shape \(\.\.\., C\) ending in a channel axis"):
        LayerNorm().init(KEY, ())
