"""fnn.optim.rules (SGD, AdaGrad, RMSProp, Lion, LARS) step by step against independent oracles.

Oracle: optax, jitted like fnn, for every configuration optax has, with the same kwargs dict
passed to both. SGD's dampening and coupled weight decay are checked against optax transforms
composed into PyTorch's formula; AdaGrad with eps outside the root (PyTorch's form, which optax
lacks) against a NumPy transcription of torch.optim.Adagrad's update.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optim_cases import (
    GRADS,
    MASK,
    PARAMS,
    STEPS,
    assert_close,
    row_ids,
    run_both,
    run_fnn,
    run_numpy,
    split,
)

import fnn.optim as fo


def torch_sgd_oracle(learning_rate, momentum, dampening=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD written with optax pieces: L2 term, (1 - dampening) g, trace, -lr."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.scale(1 - dampening),
                       optax.trace(momentum, nesterov), optax.scale_by_learning_rate(learning_rate))


ROWS = [  # (fnn factory, oracle factory, kwargs)
    (fo.sgd, optax.sgd, dict(learning_rate=0.05)),
    (fo.sgd, optax.sgd, dict(learning_rate=0.05, momentum=0.9)),
    (fo.sgd, optax.sgd, dict(learning_rate=fo.cosine_decay(0.05, STEPS), momentum=0.9, nesterov=True)),
    (fo.sgd, torch_sgd_oracle, dict(learning_rate=0.05, momentum=0.8, dampening=0.8, weight_decay=0.01)),
    (fo.sgd, torch_sgd_oracle, dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (fo.adagrad, optax.adagrad, dict(learning_rate=0.1)),
    (fo.adagrad, optax.adagrad, dict(learning_rate=0.1, initial_accumulator_value=0.0, eps=1e-10)),
    (fo.rmsprop, optax.rmsprop, dict(learning_rate=0.01)),
    (fo.rmsprop, optax.rmsprop, dict(learning_rate=0.01, decay=0.95, eps=1e-6, eps_in_sqrt=False,
                                     initial_scale=1.0)),
    (fo.rmsprop, optax.rmsprop, dict(learning_rate=0.01, centered=True, momentum=0.9)),
    (fo.rmsprop, optax.rmsprop, dict(learning_rate=fo.piecewise_constant([30, 60], [0.01, 0.005, 0.001]),
                                     momentum=0.9, nesterov=True)),
    (fo.lion, optax.lion, dict(learning_rate=0.003)),
    (fo.lion, optax.lion, dict(learning_rate=0.003, b1=0.95, b2=0.98, weight_decay=0.1, mask=MASK)),
    (fo.lars, optax.lars, dict(learning_rate=0.5)),
    (fo.lars, optax.lars, dict(learning_rate=0.5, momentum=0.8, weight_decay=0.01, trust_coefficient=0.02,
                               eps=1e-9, nesterov=True, weight_decay_mask=MASK,
                               trust_ratio_mask={"W": True, "conv": False, "seq": True})),
]


@pytest.mark.parametrize("ours, oracle, kwargs", ROWS, ids=row_ids(ROWS))
def test_matches_oracle_for_100_steps(ours, oracle, kwargs):
    fnn_kwargs, optax_kwargs = split(kwargs)
    assert_close(*run_both(ours(**fnn_kwargs), oracle(**optax_kwargs), PARAMS, GRADS))


def test_adagrad_eps_outside_root_matches_pytorch_formula():
    lr, eps, s0 = 0.1, 1e-10, 0.0

    def torch_adagrad(g, s, p):     # torch.optim.Adagrad: state_sum += g^2; p -= lr g / (sqrt(sum) + eps)
        s = jax.tree.map(lambda s, g: s + g * g, s, g)
        return jax.tree.map(lambda p, g, s: p - lr * g / (np.sqrt(s) + eps), p, g, s), s

    state = jax.tree.map(lambda p: np.full(p.shape, s0), PARAMS)
    oracle = run_numpy(torch_adagrad, state, PARAMS, GRADS)
    ours = fo.adagrad(lr, initial_accumulator_value=s0, eps=eps, eps_in_sqrt=False)
    assert_close(run_fnn(ours, PARAMS, GRADS), oracle)


def test_sgd_without_momentum_keeps_no_buffer():
    assert fo.sgd(0.1).init(PARAMS).trace == ()


@pytest.mark.parametrize("dampening", [0.0, 0.9])
def test_sgd_dampening_equal_to_momentum_gives_the_ema_form(dampening):
    # g = 1 for T steps from p = 0: b_t = (1 - d)(1 - m^t)/(1 - m), so
    # p_T = -(1 - d)/(1 - m) (T - m (1 - m^T)/(1 - m)); d = m makes the steps tend to lr, not lr/(1 - m)
    T, m = 300, 0.9
    expected = -(1 - dampening) / (1 - m) * (T - m * (1 - m**T) / (1 - m))
    ones = jax.tree.map(lambda p: jnp.ones((T, *p.shape)), PARAMS)
    final = run_fnn(fo.sgd(1.0, momentum=m, dampening=dampening), jax.tree.map(jnp.zeros_like, PARAMS), ones)
    np.testing.assert_allclose(np.asarray(final["W"]), expected, rtol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda: fo.sgd(-0.1), "sgd: learning_rate must lie in"),
    (lambda: fo.sgd(0.1, momentum=1.0), "sgd: momentum must lie in"),
    (lambda: fo.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.5), "sgd: nesterov needs"),
    (lambda: fo.sgd(0.1, weight_decay=-1.0), "sgd: weight_decay"),
    (lambda: fo.adagrad(0.1, eps=-1e-3), "adagrad: eps must lie in"),
    (lambda: fo.adagrad(0.1, initial_accumulator_value=-1.0), "adagrad: initial_accumulator_value"),
    (lambda: fo.rmsprop(0.1, decay=1.5), "rmsprop: decay must lie in"),
    (lambda: fo.rmsprop(0.1, momentum=-0.1), "rmsprop: momentum"),
    (lambda: fo.lion(0.1, b1=1.0), r"lion: b1 must lie in \[0, 1\)"),
    (lambda: fo.lion(0.1, b2=-0.5), "lion: b2"),
    (lambda: fo.lars(0.1, trust_coefficient=0.0), "lars: trust_coefficient"),
    (lambda: fo.lars(float("nan")), "lars: learning_rate"),
])
def test_bad_hyperparameters_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_rules_that_read_params_say_so_without_them():
    for opt in (fo.lars(0.1), fo.sgd(0.1, weight_decay=0.1), fo.lion(0.1)):
        with pytest.raises(ValueError, match="update needs params"):
            opt.update(PARAMS, opt.init(PARAMS))
