"""KernelSHAP and exact Shapley values over patch groups: the axioms, a closed form, convergence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import inspect as fi
from fnn import layers as L
from fnn.core import Layer

KEY = jax.random.PRNGKey(0)
X = jax.random.uniform(jax.random.PRNGKey(1), (2, 6, 6, 1), jnp.float64)       # 3x3 = 9 patches of 2x2


@pytest.fixture(scope="module")
def mlp():
    model = fnn.serial(L.Flatten(), L.Dense(8), L.Tanh(), L.Dense(3), name="mlp")
    _, params, state = model.init(KEY, (6, 6, 1))
    params = jax.tree.map(lambda p: p.astype(jnp.float64) * 3, params)
    return model, params, state


@pytest.fixture(scope="module")
def exact(mlp):
    return fi.exact_shapley(*mlp, X, patch=2)


def test_full_enumeration_equals_exact_shapley(mlp, exact):
    kernel = fi.kernel_shap(*mlp, X, patch=2, samples=1024)             # 2^9 - 2 = 510: every coalition
    np.testing.assert_allclose(kernel.values, exact.values, atol=1e-6)
    assert kernel.values.shape == (2, 9) and kernel.pixels.shape == (2, 6, 6)
    np.testing.assert_allclose(kernel.pixels[:, 0, 1], kernel.values[:, 0])


def test_efficiency_and_sampled_convergence(mlp, exact):
    y = mlp[0].apply(mlp[1], mlp[2], X)[0]
    c = jnp.argmax(y, axis=-1)
    y0 = mlp[0].apply(mlp[1], mlp[2], jnp.zeros_like(X))[0]
    change = y[jnp.arange(2), c] - y0[jnp.arange(2), c]
    np.testing.assert_allclose(exact.values.sum(axis=1), change, atol=1e-9)
    errors = []
    for samples in (16, 64, 400):
        approx = fi.kernel_shap(*mlp, X, patch=2, samples=samples, key=jax.random.PRNGKey(3))
        np.testing.assert_allclose(approx.values.sum(axis=1), change, atol=1e-9)   # efficiency holds exactly
        errors.append(float(jnp.abs(approx.values - exact.values).mean()))
    assert errors[2] < errors[0] and errors[2] < 0.5 * errors[0], errors
    again = fi.kernel_shap(*mlp, X, patch=2, samples=64, key=jax.random.PRNGKey(3))
    np.testing.assert_array_equal(again.values, fi.kernel_shap(*mlp, X, patch=2, samples=64,
                                                               key=jax.random.PRNGKey(3)).values)


def test_linear_model_closed_form():
    model = fnn.serial(L.Flatten(), L.Dense(2), name="linear")
    _, params, state = model.init(KEY, (6, 6, 1))
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    baseline = 0.3
    phi = fi.kernel_shap(model, params, state, X, target=1, patch=3, baseline=baseline)    # 4 groups
    W = params["Dense_1"]["W"][:, 1] if "Dense_1" in params else params[1]["W"][:, 1]
    contrib = ((X - baseline).reshape(2, -1) * W).reshape(2, 6, 6)
    groups = np.asarray(phi.groups)
    want = np.stack([[contrib[b][groups == g].sum() for g in range(4)] for b in range(2)])
    np.testing.assert_allclose(phi.values, want, atol=1e-9)


def test_symmetry_and_dummy():
    """y = (sum of group 0) * (sum of group 1) + 0 * group 2: groups 0 and 1 with equal sums share
    the value, group 2 gets 0."""
    groups = np.array([[0, 0, 1], [1, 2, 2], [2, 2, 2]])

    def forward(params, state, x, *, key=None, train=False):
        a = jnp.sum(x[:, :, :, 0] * (groups == 0).astype(x.dtype), axis=(1, 2))
        b = jnp.sum(x[:, :, :, 0] * (groups == 1).astype(x.dtype), axis=(1, 2))
        return jnp.stack([a * b, a], axis=-1), state, None

    model = Layer(lambda key, s: ((2,), (), ()), forward, None, "product")
    x = jnp.array([[1.0, 2.0, 0.5], [2.5, 7.0, 7.0], [9.0, 9.0, 9.0]], jnp.float64)[None, :, :, None]
    for phi in (fi.exact_shapley(model, (), (), x, 0, groups=groups),
                fi.kernel_shap(model, (), (), x, 0, groups=groups)):
        np.testing.assert_allclose(phi.values[0], [4.5, 4.5, 0.0], atol=1e-9)


def test_bad_input(mlp):
    with pytest.raises(ValueError, match=r"kernel_shap: patch must be an int in 1\.\.6 for 6x6 images, got 7"):
        fi.kernel_shap(*mlp, X, patch=7)
    with pytest.raises(ValueError, match=r"exact_shapley: patch must be an int"):
        fi.exact_shapley(*mlp, X, patch=0)
    with pytest.raises(ValueError, match=r"exact_shapley: 36 groups need 2\^36 model calls"):
        fi.exact_shapley(*mlp, X, patch=1)
    with pytest.raises(ValueError, match=r"kernel_shap: groups must be an int map of shape \(6, 6\)"):
        fi.kernel_shap(*mlp, X, groups=np.zeros((5, 5), int))
    with pytest.raises(ValueError, match=r"kernel_shap: expected images \(B, H, W, C\)"):
        fi.kernel_shap(*mlp, X[..., 0])


def test_rank_correlation():
    assert fi.rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert fi.rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
