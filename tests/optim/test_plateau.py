"""fnn.optim.plateau: reduce_on_plateau against a Python transcription of PyTorch's
ReduceLROnPlateau bookkeeping with the sign-safe threshold, for positive and negative losses."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optim_cases import PARAMS

import fnn.optim as fo


def plateau_reference(values, factor, patience, rtol, atol, cooldown, accumulation_size, min_scale):
    """torch.optim.lr_scheduler.ReduceLROnPlateau (mode='min') step by step, with the improvement
    test v < best - rtol |best| - atol; returns the scale after each value."""
    scale, best, bad, cool, window, out = 1.0, math.inf, 0, 0, [], []
    for v in values:
        window.append(v)
        if len(window) == accumulation_size:
            mean, window = sum(window) / accumulation_size, []
            if best == math.inf or mean < best - rtol * abs(best) - atol:
                best, bad = mean, 0
            else:
                bad += 1
            if cool > 0:
                cool, bad = cool - 1, 0
            if bad > patience:
                scale, cool, bad = max(scale * factor, min_scale), cooldown, 0
        out.append(scale)
    return out


def run_plateau(opt, values):
    """Scales after each value, from one jitted scan; checks the updates are scale * grads."""
    grads = {"w": jnp.array([1.0, -2.0, 3.0])}

    def body(state, v):
        updates, state = opt.update(grads, state, value=v)
        return state, (state.lr_scale, updates["w"] / grads["w"])

    _, (scales, ratios) = jax.jit(lambda vs: jax.lax.scan(body, opt.init(grads), vs))(jnp.asarray(values))
    np.testing.assert_allclose(np.asarray(ratios), np.repeat(np.asarray(scales)[:, None], 3, axis=1))
    return [float(s) for s in scales]


LOSSES = {   # value sequences: improving, stalling, noisy, and negative (where the sign matters)
    "positive": [5.0, 4.0, 3.5, 3.4, 3.4, 3.4, 3.4, 3.4, 3.39, 3.5, 3.5, 3.5, 3.5, 3.5, 3.0, 3.0, 3.0, 3.0],
    "negative": [-1.0, -2.0, -5.0, -5.0002, -5.0001, -4.9999, -5.0003, -5.0, -4.9, -4.8, -6.0, -6.0, -6.0,
                 -6.0, -6.0, -6.0, -6.0, -6.0],
    "noisy": list(np.round(np.sin(np.arange(40)) * 0.1 - np.arange(40) * 0.002, 6)),
}


@pytest.mark.parametrize("losses", sorted(LOSSES))
@pytest.mark.parametrize("kwargs", [
    dict(factor=0.5, patience=2, rtol=1e-4, atol=0.0, cooldown=0, accumulation_size=1, min_scale=0.0),
    dict(factor=0.1, patience=1, rtol=0.0, atol=0.01, cooldown=2, accumulation_size=1, min_scale=0.005),
    dict(factor=0.5, patience=0, rtol=1e-3, atol=0.0, cooldown=1, accumulation_size=3, min_scale=0.0),
], ids=["rtol", "atol_cooldown_min", "windows"])
def test_reduce_on_plateau_matches_the_reference(kwargs, losses):
    expected = plateau_reference(LOSSES[losses], **kwargs)
    assert run_plateau(fo.reduce_on_plateau(**kwargs), LOSSES[losses]) == pytest.approx(expected, rel=1e-12)
    assert min(expected) < 1.0          # every row reduces at least once, so the test has teeth


def test_reduce_on_plateau_treats_negative_losses_by_magnitude():
    """A loss stuck near -5 is a plateau; (1 - rtol) * best (PyTorch, optax) would count -4.9999
    as an improvement on -5 and never reduce."""
    values = [-5.0] + [-5.0 + 1e-4 * (-1) ** k for k in range(6)]
    scales = run_plateau(fo.reduce_on_plateau(factor=0.5, patience=2, rtol=1e-4), values)
    assert scales[-1] < 1.0
    improving = [-5.0 * 1.01**k for k in range(7)]                  # 1% better each time: never a plateau
    assert run_plateau(fo.reduce_on_plateau(factor=0.5, patience=2, rtol=1e-4), improving)[-1] == 1.0


def test_reduce_on_plateau_needs_the_value_and_keeps_its_scale_in_the_state():
    opt = fo.chain(fo.sgd(0.1), fo.reduce_on_plateau(factor=0.5, patience=0))
    state = opt.init(PARAMS)
    with pytest.raises(ValueError, match="reduce_on_plateau: update needs the loss"):
        opt.update(PARAMS, state, PARAMS)
    step = jax.jit(lambda state, value: opt.update(PARAMS, state, PARAMS, value=value)[1])
    for value in (1.0, 2.0):
        state = step(state, value)
    assert float(state[-1].lr_scale) == 0.5 and fo.learning_rate_at(opt, 1) == pytest.approx(0.1)


@pytest.mark.parametrize("make, match", [
    (lambda: fo.reduce_on_plateau(factor=1.0), "reduce_on_plateau: factor"),
    (lambda: fo.reduce_on_plateau(patience=-1), "reduce_on_plateau: patience"),
    (lambda: fo.reduce_on_plateau(accumulation_size=0), "reduce_on_plateau: accumulation_size"),
    (lambda: fo.reduce_on_plateau(min_scale=2.0), "reduce_on_plateau: min_scale"),
])
def test_bad_arguments_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()
