"""fnn.optim.alias (the named optimizers) step by step against independent oracles.

Oracle: optax, jitted in the same function as fnn, for every configuration optax has (the same
kwargs dict goes to both). The PyTorch conventions optax lacks are checked against optax pieces
composed into PyTorch's formula (SGD's dampening and coupled weight decay) or NumPy
transcriptions of torch.optim (NAdam's momentum schedule, AMSGrad's max of the raw second
moment, AdaGrad's eps outside the root).
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
    Both,
    assert_close,
    row_ids,
    run_both,
    run_fnn,
    run_numpy,
    split,
)

import fnn.optim as fo

WARMUP_COSINE = fo.warmup_cosine(0.001, 0.02, 10, STEPS, end_value=0.002)   # given to both sides


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
    (fo.rmsprop, optax.rmsprop, dict(learning_rate=fo.piecewise_constant(0.01, {30: 0.5, 60: 0.2}),
                                     momentum=0.9, nesterov=True)),
    (fo.rmsprop, optax.rmsprop, dict(learning_rate=0.01, centered=True, bias_correction=True)),
    (fo.adam, optax.adam, dict(learning_rate=0.01)),
    (fo.adam, optax.adam, dict(learning_rate=WARMUP_COSINE, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8)),
    (fo.adam, optax.adam, dict(learning_rate=0.01, nesterov=True)),
    (fo.adamw, optax.adamw, dict(learning_rate=0.01, weight_decay=0.1, mask=MASK)),
    (fo.adamw, optax.adamw, dict(learning_rate=0.01, weight_decay=0.1,       # decay_mask = "ndim >= 2"
                                 mask=Both(fo.decay_mask, {"W": True, "conv": True, "seq": False}))),
    (fo.nadam, optax.nadam, dict(learning_rate=0.01, b1=0.95)),
    (fo.amsgrad, optax.amsgrad, dict(learning_rate=0.01)),
    (fo.amsgrad, optax.amsgrad, dict(learning_rate=0.01, bias_correction_mu=False, bias_correction_nu=False)),
    (fo.adabelief, optax.adabelief, dict(learning_rate=0.01)),
    (fo.adabelief, optax.adabelief, dict(learning_rate=0.01, eps=1e-8, eps_root=0.0, nesterov=True)),
    (fo.radam, optax.radam, dict(learning_rate=0.01)),
    (fo.radam, optax.radam, dict(learning_rate=0.01, b2=0.99, threshold=4.0)),
    (fo.lion, optax.lion, dict(learning_rate=0.003)),
    (fo.lion, optax.lion, dict(learning_rate=0.003, b1=0.95, b2=0.98, weight_decay=0.1, mask=MASK)),
    (fo.lamb, optax.lamb, dict(learning_rate=0.01)),
    (fo.lamb, optax.lamb, dict(learning_rate=0.01, weight_decay=0.01, mask=MASK, eps_root=1e-10)),
    (fo.lars, optax.lars, dict(learning_rate=0.5)),
    (fo.lars, optax.lars, dict(learning_rate=0.5, momentum=0.8, weight_decay=0.01, trust_coefficient=0.02,
                               eps=1e-9, nesterov=True, weight_decay_mask=MASK,
                               trust_ratio_mask={"W": True, "conv": False, "seq": True})),
]


@pytest.mark.parametrize("ours, oracle, kwargs", ROWS, ids=row_ids(ROWS))
def test_matches_optax_for_100_steps(ours, oracle, kwargs):
    fnn_kwargs, optax_kwargs = split(kwargs)
    assert_close(*run_both(ours(**fnn_kwargs), oracle(**optax_kwargs), PARAMS, GRADS))


def _zeros():
    return jax.tree.map(lambda p: np.zeros(p.shape), PARAMS)


def test_nadam_momentum_schedule_matches_pytorch_formula():
    lr, b1, b2, eps, psi = 0.01, 0.9, 0.999, 1e-8, 4e-3

    def torch_nadam(g, state, p):                       # torch.optim.NAdam, single-tensor path
        t, mu_product, m, v = state
        t += 1
        mu, mu_next = (b1 * (1 - 0.5 * 0.96 ** (s * psi)) for s in (t, t + 1))
        mu_product *= mu
        m = jax.tree.map(lambda m, g: m + (1 - b1) * (g - m), m, g)          # exp_avg.lerp_
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        denom = jax.tree.map(lambda v: np.sqrt(v / (1 - b2**t)) + eps, v)
        p = jax.tree.map(lambda p, g, m, d: p - lr * (1 - mu) / (1 - mu_product) * g / d
                         - lr * mu_next / (1 - mu_product * mu_next) * m / d, p, g, m, denom)
        return p, (t, mu_product, m, v)

    oracle = run_numpy(torch_nadam, (0, 1.0, _zeros(), _zeros()), PARAMS, GRADS)
    assert_close(run_fnn(fo.nadam(lr, b1, b2, eps, momentum_decay=psi), PARAMS, GRADS), oracle)


def test_amsgrad_max_before_correction_matches_pytorch_formula():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8

    def torch_amsgrad(g, state, p):                     # torch.optim.Adam(amsgrad=True)
        t, m, v, v_max = state
        t += 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        v_max = jax.tree.map(np.maximum, v_max, v)
        denom = jax.tree.map(lambda vm: np.sqrt(vm) / np.sqrt(1 - b2**t) + eps, v_max)
        p = jax.tree.map(lambda p, m, d: p - lr / (1 - b1**t) * m / d, p, m, denom)
        return p, (t, m, v, v_max)

    oracle = run_numpy(torch_amsgrad, (0, _zeros(), _zeros(), _zeros()), PARAMS, GRADS)
    ours = fo.amsgrad(lr, b1, b2, eps, max_before_correction=True)
    assert_close(run_fnn(ours, PARAMS, GRADS), oracle)


def test_the_two_amsgrad_conventions_differ():
    """Guards the test above: the max before or after debiasing gives different parameters."""
    after = run_fnn(fo.amsgrad(0.01), PARAMS, GRADS)
    before = run_fnn(fo.amsgrad(0.01, max_before_correction=True), PARAMS, GRADS)
    assert np.max(np.abs(np.asarray(after["W"]) - np.asarray(before["W"]))) > 1e-6


def test_adagrad_eps_outside_root_matches_pytorch_formula():
    lr, eps, s0 = 0.1, 1e-10, 0.0

    def torch_adagrad(g, s, p):     # torch.optim.Adagrad: state_sum += g^2; p -= lr g / (sqrt(sum) + eps)
        s = jax.tree.map(lambda s, g: s + g * g, s, g)
        return jax.tree.map(lambda p, g, s: p - lr * g / (np.sqrt(s) + eps), p, g, s), s

    state = jax.tree.map(lambda p: np.full(p.shape, s0), PARAMS)
    oracle = run_numpy(torch_adagrad, state, PARAMS, GRADS)
    ours = fo.adagrad(lr, initial_accumulator_value=s0, eps=eps, eps_in_sqrt=False)
    assert_close(run_fnn(ours, PARAMS, GRADS), oracle)


@pytest.mark.parametrize("dampening", [0.0, 0.9])
def test_sgd_dampening_equal_to_momentum_gives_the_ema_form(dampening):
    # g = 1 for T steps from p = 0: b_t = (1 - d)(1 - m^t)/(1 - m), so
    # p_T = -(1 - d)/(1 - m) (T - m (1 - m^T)/(1 - m)); d = m makes the steps tend to lr, not lr/(1 - m)
    T, m = 300, 0.9
    expected = -(1 - dampening) / (1 - m) * (T - m * (1 - m**T) / (1 - m))
    ones = jax.tree.map(lambda p: jnp.ones((T, *p.shape)), PARAMS)
    final = run_fnn(fo.sgd(1.0, momentum=m, dampening=dampening), jax.tree.map(jnp.zeros_like, PARAMS), ones)
    np.testing.assert_allclose(np.asarray(final["W"]), expected, rtol=1e-12)


def test_named_optimizers_are_chains_whose_states_hold_optax_fields():
    """adam's state is (ScaleByAdamState(count, mu, nu), ()) as optax's (no learning_rate field);
    sgd without momentum keeps no buffer; a schedule adds only a count."""
    state = fo.adam(0.01).init(PARAMS)
    assert type(state[0])._fields == ("count", "mu", "nu") and state[1] == ()
    assert fo.sgd(0.1).init(PARAMS) == ((),)
    assert type(fo.sgd(fo.cosine_decay(0.1, 10)).init(PARAMS)[0])._fields == ("count",)
    assert type(fo.lion(0.1).init(PARAMS)[0])._fields == type(optax.lion(0.1).init(PARAMS)[0])._fields


@pytest.mark.parametrize("make, match", [
    (lambda: fo.sgd(-0.1), "sgd: learning_rate must lie in"),
    (lambda: fo.sgd(0.1, momentum=1.0), "sgd: momentum must lie in"),
    (lambda: fo.sgd(0.1, momentum=0.9, nesterov=True, dampening=0.5), "sgd: nesterov needs"),
    (lambda: fo.sgd(0.1, weight_decay=-1.0), "sgd: weight_decay"),
    (lambda: fo.adagrad(0.1, eps=-1e-3), "adagrad: eps must lie in"),
    (lambda: fo.adagrad(0.1, initial_accumulator_value=-1.0), "adagrad: initial_accumulator_value"),
    (lambda: fo.rmsprop(0.1, decay=1.5), "rmsprop: decay must lie in"),
    (lambda: fo.rmsprop(0.1, momentum=-0.1), "rmsprop: momentum"),
    (lambda: fo.adam(-1e-3), "adam: learning_rate must lie in"),
    (lambda: fo.adam(1e-3, b1=1.0), r"adam: b1 must lie in \[0, 1\), got 1.0"),
    (lambda: fo.adam(1e-3, b2=-0.1), "adam: b2"),
    (lambda: fo.adam(1e-3, eps=-1e-8), "adam: eps must"),
    (lambda: fo.adam(1e-3, eps_root=-1.0), "adam: eps_root"),
    (lambda: fo.adam("0.1"), "adam: learning_rate must be a real number"),
    (lambda: fo.adamw(1e-3, weight_decay=-0.1), "adamw: weight_decay"),
    (lambda: fo.nadam(1e-3, momentum_decay=-1.0), "nadam: momentum_decay"),
    (lambda: fo.amsgrad(1e-3, b1=1.5), "amsgrad: b1"),
    (lambda: fo.adabelief(1e-3, eps=-1.0), "adabelief: eps"),
    (lambda: fo.radam(1e-3, threshold=-1.0), "radam: threshold"),
    (lambda: fo.lion(0.1, b1=1.0), r"lion: b1 must lie in \[0, 1\)"),
    (lambda: fo.lion(0.1, b2=-0.5), "lion: b2"),
    (lambda: fo.lamb(1e-3, b2=1.0), "lamb: b2"),
    (lambda: fo.lars(0.1, trust_coefficient=0.0), "lars: trust_coefficient"),
    (lambda: fo.lars(float("nan")), "lars: learning_rate"),
])
def test_bad_hyperparameters_raise_when_built(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_optimizers_that_read_params_say_so_without_them():
    for opt in (fo.lars(0.1), fo.sgd(0.1, weight_decay=0.1), fo.lion(0.1), fo.lamb(0.1)):
        with pytest.raises(ValueError, match="update needs params"):
            opt.update(PARAMS, opt.init(PARAMS))
