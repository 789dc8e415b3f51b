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


_MASKS = jax.jit(lambda key, rate: jax.vmap(lambda k: L.keep_mask(k, (1000, 100), rate))(jax.random.split(key, 4)),
                 static_argnums=1)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_mask_statistics(rate):
    """The counter-hash mask against the Bernoulli(1 - rate) it stands for: the kept fraction, the
    independence of neighbours (lag-1 and lag-100 agreement) and of masks from different keys."""
    masks = np.asarray(_MASKS(jax.random.PRNGKey(7), rate)).reshape(4, -1)
    p, n = 1 - rate, masks.shape[1]
    sd = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(masks.mean(axis=1) - p) < 5 * sd)
    both_kept = p * p                                    # P(two independent draws are both kept)
    for lag in (1, 100):
        pairs = (masks[:, lag:] & masks[:, :-lag]).mean()
        assert abs(pairs - both_kept) < 5 * np.sqrt(both_kept * (1 - both_kept) / (4 * n)) + 1e-3
    assert abs((masks[0] & masks[1]).mean() - both_kept) < 5 * np.sqrt(both_kept * (1 - both_kept) / n) + 1e-3
    np.testing.assert_array_equal(masks[0], np.asarray(L.keep_mask(jax.random.split(jax.random.PRNGKey(7), 4)[0],
                                                                   (1000, 100), rate)).ravel())
