"""Dropout: rate is the probability of dropping; inverted scaling; keys are explicit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import layers as L


def test_eval_is_identity_and_train_scales_kept_units():
    drop = L.Dropout(0.25)
    x = jnp.ones((400, 50))
    np.testing.assert_array_equal(drop.apply((), (), x)[0], x)
    y, _ = drop.apply((), (), x, key=jax.random.PRNGKey(0), train=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(float(1 - kept.mean()) - 0.25) < 0.01     # 20000 draws: sd 0.003


def test_same_key_same_mask_and_backward_uses_it():
    drop = L.Dropout(0.5)
    x = jnp.arange(1.0, 13.0).reshape(3, 4)
    y, _, cache = drop.forward((), (), x, key=jax.random.PRNGKey(3), train=True)
    _, dx = drop.backward((), cache, jnp.ones_like(x))
    np.testing.assert_allclose(dx, jnp.where(y != 0, 2.0, 0.0))


def test_training_without_a_key_is_a_clear_error():
    with pytest.raises(ValueError, match="Dropout: training mode needs a PRNG key"):
        L.Dropout(0.1).apply((), (), jnp.ones((2, 3)), train=True)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=r"Dropout: rate \(the probability of dropping\) must lie in \[0, 1\)"):
        L.Dropout(rate)
