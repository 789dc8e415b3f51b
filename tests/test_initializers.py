"""Initializers: shapes, dtypes, variances against their formulas, orthogonality."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import initializers as I

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("init, var", [
    (I.glorot_uniform, 2.0 / (400 + 300)), (I.glorot_normal, 2.0 / (400 + 300)),
    (I.he_uniform, 2.0 / 400), (I.he_normal, 2.0 / 400),
    (I.lecun_uniform, 1.0 / 400), (I.lecun_normal, 1.0 / 400),
    (I.normal(0.05), 0.05 ** 2), (I.uniform(0.1), 0.1 ** 2 / 3),
])
def test_variance_matches_formula(init, var):
    w = init(KEY, (400, 300))
    assert w.shape == (400, 300) and w.dtype == jnp.float32
    assert abs(float(jnp.var(w)) / var - 1) < 0.03      # 120000 samples
    assert abs(float(jnp.mean(w))) < 0.01


def test_conv_kernel_fans():
    w = I.he_normal(KEY, (3, 3, 16, 32))                 # fan_in = 3*3*16
    assert abs(float(jnp.var(w)) * (3 * 3 * 16) / 2 - 1) < 0.05


@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (3, 3, 4, 8)])
def test_orthogonal(shape):
    w = np.asarray(I.orthogonal(2.0)(KEY, shape), np.float64).reshape(-1, shape[-1])
    small = min(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 4 * np.eye(small), atol=1e-4)


def test_constants_and_dtype():
    assert I.zeros(KEY, (2,), jnp.float64).dtype == jnp.float64
    np.testing.assert_array_equal(I.ones(KEY, (2,)), [1, 1])
    np.testing.assert_array_equal(I.constant(0.25)(KEY, (3,)), [0.25] * 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="variance_scaling: mode"):
        I.variance_scaling(1.0, "fan_sideways", "normal")
    with pytest.raises(ValueError, match="orthogonal: expected a shape of at least 2 axes"):
        I.orthogonal()(KEY, (5,))
