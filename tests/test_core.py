"""fnn.core: manual() runs the hand-derived backward under jax.grad; cast; shape checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import layers as L
from fnn.core import check_input, tree_size


def _mlp():
    return fnn.serial(L.Dense(16), L.Tanh(), L.Dense(8), L.Relu(), L.Dense(3))


def _setup(dtype=jnp.float64):
    model = _mlp()
    _, params, state = model.init(jax.random.PRNGKey(0), (5,))
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 5), dtype)
    t = jax.random.normal(jax.random.PRNGKey(2), (7, 3), dtype)
    return model, fnn.cast(params, dtype), state, x, t


def test_manual_grad_equals_autodiff_under_jit():
    model, params, state, x, t = _setup()
    manual = fnn.manual(model)

    def loss(m):
        return jax.jit(jax.grad(lambda p, xx: jnp.mean((m.apply(p, state, xx)[0] - t) ** 2), argnums=(0, 1)))

    g_auto, g_hand = loss(model)(params, x), loss(manual)(params, x)
    for a, h in zip(jax.tree.leaves(g_auto), jax.tree.leaves(g_hand)):
        np.testing.assert_allclose(h, a, rtol=1e-10, atol=1e-14)


def test_manual_really_uses_the_hand_backward():
    dense = L.Dense(2)
    doubled = fnn.Layer(dense.init, dense.forward,
                        lambda p, c, dy: jax.tree.map(lambda g: 2 * g, dense.backward(p, c, dy)), "x2")
    _, params, state = dense.init(jax.random.PRNGKey(0), (3,))
    x = jnp.ones((4, 3), jnp.float32)
    f = lambda layer: jax.grad(lambda p: layer.apply(p, state, x)[0].sum())(params)
    np.testing.assert_allclose(f(fnn.manual(doubled))["W"], 2 * f(dense)["W"], rtol=1e-6)


def test_vmap_over_apply():
    model, params, state, x, _ = _setup()
    xs = jnp.stack([x, 2 * x])
    ys = jax.vmap(lambda xx: model.apply(params, state, xx)[0])(xs)
    np.testing.assert_allclose(ys[1], model.apply(params, state, 2 * x)[0], rtol=1e-12)


def test_cast_keeps_integer_leaves():
    tree = {"w": jnp.ones(3, jnp.float32), "n": jnp.zeros((), jnp.int32)}
    out = fnn.cast(tree, jnp.float64)
    assert out["w"].dtype == jnp.float64 and out["n"].dtype == jnp.int32
    assert tree_size(tree) == 4


@pytest.mark.parametrize("x, match, error", [
    (jnp.ones((2, 3), jnp.int32), "Demo: expected a floating-point array", TypeError),
    (jnp.ones((2, 4)), r"Demo: expected x of shape \(B, 3\), got \(2, 4\)", ValueError),
    ([1.0, 2.0], "Demo: expected an array", TypeError),
])
def test_check_input_errors_name_the_layer(x, match, error):
    with pytest.raises(error, match=match):
        check_input("Demo", x, (3,))


def test_serial_init_reports_bad_shapes():
    model = fnn.serial(L.Dense(4), L.Reshape((3, -1)))
    with pytest.raises(ValueError, match="Reshape: cannot reshape"):
        model.init(jax.random.PRNGKey(0), (5,))


def test_combinators_reject_non_layers():
    with pytest.raises(TypeError, match="serial: expected one or more Layers"):
        fnn.serial(L.Dense(3), "relu")


def test_residual_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"residual: the branch maps \(5,\) to \(3,\)"):
        fnn.residual(L.Dense(3)).init(jax.random.PRNGKey(0), (5,))


def test_summary_lists_layers_and_total():
    text = fnn.summary(fnn.serial(L.Flatten(), L.Dense(10), fnn.residual(L.Dense(10))), (2, 3))
    assert "Dense" in text and "residual" in text
    assert "Total params: 180" in text          # 6*10+10 + 10*10+10


def test_frozen_runs_in_eval_mode_and_keeps_batchnorm_statistics():
    trunk = fnn.serial(L.Dense(4), L.BatchNorm(), L.Dropout(0.5))
    frozen = L.Frozen(trunk)
    _, params, state = frozen.init(jax.random.PRNGKey(0), (3,))
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 3), jnp.float32)
    y, new_state = frozen.apply(params, state, x, key=jax.random.PRNGKey(2), train=True)
    y_eval, _ = trunk.apply(params, state, x, train=False)
    np.testing.assert_array_equal(y, y_eval)
    for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make, in_shape, match", [
    (lambda: L.Dense(4), 784, r"^Dense: in_shape is the shape of ONE example, a tuple such as \(784,\)"),
    (lambda: fnn.serial(L.Dense(4), name="mlp"), 784, r"^mlp/Dense: in_shape is the shape of ONE example"),
    (lambda: fnn.models.mlp(), 784, r"^mlp/Flatten: in_shape is the shape of ONE example, a tuple such as"),
    (lambda: L.Reshape((4, 7)), 28, r"^Reshape: in_shape is the shape of ONE example"),
    (lambda: L.Conv2D(4, 3), (64, 28, 28, 1), r"^Conv2D: expected in_shape \(H, W, C_in\), got \(64, 28, 28, 1\) "
                                                r"\(in_shape has no batch axis\)$"),
    (lambda: L.MaxPool2D(2), (28, 28), r"^MaxPool2D: expected in_shape \(H, W, C\), got \(28, 28\)$"),
    (lambda: L.BatchNorm(), (), r"^BatchNorm: expected in_shape \(\.\.\., C\) ending in a channel axis, got \(\)$"),
    (lambda: L.GlobalAvgPool(), (5,), r"^GlobalAvgPool: expected in_shape \(\*spatial, C\) with a spatial axis"),
])
def test_init_checks_one_example_shape(make, in_shape, match):
    with pytest.raises(ValueError, match=match):
        make().init(jax.random.PRNGKey(0), in_shape)
