"""fnn.optim.adam (Adam, AdamW, NAdam, AMSGrad, AdaBelief, RAdam, LAMB) against independent oracles.

Oracle: optax, jitted in the same function as fnn, for every configuration optax has (the same
kwargs dict goes to both). The two PyTorch conventions optax lacks, NAdam's momentum schedule
(momentum_decay) and AMSGrad's max of the raw second moment (max_before_correction), are checked
against NumPy transcriptions of torch.optim.NAdam and torch.optim.Adam(amsgrad=True).
"""
import jax
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

WARMUP_COSINE = fo.warmup_cosine(0.001, 0.02, 10, STEPS, lr_min=0.002)   # given to both sides

ROWS = [  # (fnn factory, oracle factory, kwargs)
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
    (fo.lamb, optax.lamb, dict(learning_rate=0.01)),
    (fo.lamb, optax.lamb, dict(learning_rate=0.01, weight_decay=0.01, mask=MASK, eps_root=1e-10)),
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


@pytest.mark.parametrize("make, match", [
    (lambda: fo.adam(-1e-3), "adam: learning_rate must lie in"),
    (lambda: fo.adam(1e-3, b1=1.0), r"adam: b1 must lie in \[0, 1\), got 1.0"),
    (lambda: fo.adam(1e-3, b2=-0.1), "adam: b2"),
    (lambda: fo.adam(1e-3, eps=-1e-8), "adam: eps must"),
    (lambda: fo.adam(1e-3, eps_root=-1.0), "adam: eps_root"),
    (lambda: fo.adamw(1e-3, weight_decay=-0.1), "adamw: weight_decay"),
    (lambda: fo.nadam(1e-3, momentum_decay=-1.0), "nadam: momentum_decay"),
    (lambda: fo.amsgrad(1e-3, b1=1.5), "amsgrad: b1"),
    (lambda: fo.adabelief(1e-3, eps=-1.0), "adabelief: eps"),
    (lambda: fo.radam(1e-3, threshold=-1.0), "radam: threshold"),
    (lambda: fo.lamb(1e-3, b2=1.0), "lamb: b2"),
    (lambda: fo.adam("0.1"), "adam: learning_rate must be a real number"),
])
def test_bad_hyperparameters_raise_when_built(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
