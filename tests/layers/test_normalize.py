"""Normalize: values against torchvision's formula, the hand backward, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.layers import IMAGENET_MEAN, IMAGENET_STD, Normalize

KEY = jax.random.PRNGKey(0)

# Its CASES rows (fnn/layers/normalize.py) are gradient-checked in tests/test_gradcheck.py.


def test_values_and_backward_by_hand():
    layer = Normalize(IMAGENET_MEAN, IMAGENET_STD)
    assert layer.init(KEY, (4, 4, 3))[0] == (4, 4, 3)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 4, 4, 3)))
    y, _, cache = layer.forward((), (), x)
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    np.testing.assert_allclose(y, (np.asarray(x) - mean) / std, rtol=1e-14)
    dparams, dx = layer.backward((), cache, jnp.ones_like(y))
    assert dparams == ()
    np.testing.assert_allclose(dx, np.broadcast_to(1 / std, x.shape), rtol=1e-14)


def test_float32_stays_float32():
    y, _ = Normalize((0.5,), (2.0,)).apply((), (), jnp.ones((2, 3, 1), jnp.float32))
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, 0.25)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="Normalize: expected mean and std as two sequences of C floats"):
        Normalize((0.1, 0.2), (1.0,))
    with pytest.raises(ValueError, match="Normalize: expected finite mean and std > 0"):
        Normalize((0.1,), (0.0,))
    with pytest.raises(ValueError, match=r"Normalize: expected x of shape \(B, \.\.\., 3\), got \(2, 4, 1\)"):
        Normalize(IMAGENET_MEAN, IMAGENET_STD).apply((), (), jnp.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match=r"Normalize: expected in_shape \(\.\.\., 3\), got \(4, 4, 1\)"):
        Normalize(IMAGENET_MEAN, IMAGENET_STD).init(KEY, (4, 4, 1))
