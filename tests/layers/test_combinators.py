"""ensemble / MeanLogSoftmax against a NumPy oracle (the gradient check is the `ensemble` CASES row
in tests/test_gradcheck.py): the mean of the members' log-probabilities, each member keeping its
own params, and clear errors for too few models or mismatched shapes."""
import jax
import numpy as np
import pytest

import fnn
from fnn import layers as L


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _members():
    return [fnn.serial(L.Dense(6), L.Tanh(), L.Dense(4)) for _ in range(3)]


def test_ensemble_is_the_mean_of_the_members_log_probabilities():
    members = _members()
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    own = [m.init(k, (5,))[1] for m, k in zip(members, keys)]
    x = np.asarray(jax.random.normal(keys[3], (7, 5)), np.float32)
    model = fnn.ensemble(*members)
    _, _, state = model.init(keys[0], (5,))
    y, _ = model.apply((tuple(own), ()), state, x)
    logits = [np.asarray(m.apply(p, s, x)[0], np.float64) for m, p, s in zip(members, own, state[0])]
    want = sum(_log_softmax(z) for z in logits) / 3
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-5)
    assert np.array_equal(np.argmax(y, -1), np.argmax(want, -1))


def test_ensemble_init_gives_each_member_its_own_params():
    out_shape, params, _ = fnn.ensemble(*_members()).init(jax.random.PRNGKey(1), (5,))
    assert out_shape == (4,)
    members, joined = params
    assert len(members) == 3 and joined == ()
    assert not np.allclose(members[0][0]["W"], members[1][0]["W"])


def test_backward_of_the_join_against_the_formula():
    xs = tuple(np.random.default_rng(0).normal(size=(2, 3, 5)) for _ in range(2))
    dy = np.random.default_rng(1).normal(size=(2, 3, 5))
    layer = L.MeanLogSoftmax()
    _, _, cache = layer.forward((), (), xs)
    _, dxs = layer.backward((), cache, dy)
    for x, dx in zip(xs, dxs):
        p = np.exp(_log_softmax(x))
        np.testing.assert_allclose(np.asarray(dx), (dy - p * dy.sum(-1, keepdims=True)) / 2, rtol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: fnn.ensemble(L.Dense(3)), "ensemble: expected two or more models"),
    (lambda: fnn.ensemble(L.Dense(3), L.Dense(4)).init(jax.random.PRNGKey(0), (5,)),
     r"MeanLogSoftmax: inputs must share one shape .* got \(\(3,\), \(4,\)\)"),
])
def test_errors_name_the_combinator(make, match):
    with pytest.raises(ValueError, match=match):
        make()
