"""fnn.optim.transforms: clipping, weight decay and scaling against optax (chained with a rule,
100 steps, both jitted in one function); reduce_on_plateau against a Python transcription of
PyTorch's ReduceLROnPlateau bookkeeping with the sign-safe threshold, for positive and
negative losses."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optim_cases import GRADS, MASK, PARAMS, assert_close, run_both

import fnn.optim as fo

ROWS = [  # (fnn optimizer, optax optimizer)
    (fo.chain(fo.clip_by_global_norm(1.0), fo.sgd(0.1, momentum=0.9)),
     optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1, momentum=0.9))),
    (fo.chain(fo.clip_by_global_norm(9.0), fo.adam(0.01)),          # clips some steps, not others
     optax.chain(optax.clip_by_global_norm(9.0), optax.adam(0.01))),
    (fo.chain(fo.clip_by_value(0.5), fo.sgd(0.1)), optax.chain(optax.clip(0.5), optax.sgd(0.1))),
    (fo.chain(fo.add_decayed_weights(0.1, MASK), fo.sgd(0.1)),
     optax.chain(optax.add_decayed_weights(0.1, MASK), optax.sgd(0.1))),
    (fo.chain(fo.adam(1.0), fo.scale_by_schedule(fo.cosine_decay(0.01, 100))),
     optax.chain(optax.adam(1.0), optax.scale_by_schedule(fo.cosine_decay(0.01, 100)))),
]


@pytest.mark.parametrize("ours, oracle", ROWS, ids=["clip_1", "clip_9", "clip_value", "decay", "schedule"])
def test_matches_optax_for_100_steps(ours, oracle):
    assert_close(*run_both(ours, oracle, PARAMS, GRADS))


def test_the_clip_threshold_is_crossed_both_ways_in_that_sequence():
    norms = jax.jit(jax.vmap(fo.global_norm))(GRADS)
    assert float(jnp.min(norms)) < 9.0 < float(jnp.max(norms))


def test_decay_mask_decays_weights_but_not_biases_or_norm_parameters():
    params = {"dense": {"W": jnp.ones((3, 4)), "b": jnp.ones(4)}, "norm": {"gamma": jnp.ones(4),
              "beta": jnp.ones(4)}, "conv": {"W": jnp.ones((3, 3, 1, 2))}}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = fo.add_decayed_weights(0.5, fo.decay_mask).update(zeros, (), params)
    decayed = jax.tree.map(lambda u: bool(jnp.all(u == 0.5)), updates)
    assert decayed == {"dense": {"W": True, "b": False}, "norm": {"gamma": False, "beta": False},
                       "conv": {"W": True}}


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


def test_reduce_on_plateau_needs_the_value_and_reports_the_rate():
    opt = fo.chain(fo.sgd(0.1), fo.reduce_on_plateau(factor=0.5, patience=0))
    state = opt.init(PARAMS)
    with pytest.raises(ValueError, match="reduce_on_plateau: update needs the loss"):
        opt.update(PARAMS, state, PARAMS)
    step = jax.jit(lambda state, value: opt.update(PARAMS, state, PARAMS, value=value)[1])
    for value in (1.0, 2.0):
        state = step(state, value)
    assert float(fo.current_learning_rate(state)) == pytest.approx(0.05)


@pytest.mark.parametrize("make, match", [
    (lambda: fo.clip_by_global_norm(0.0), "clip_by_global_norm: max_norm"),
    (lambda: fo.clip_by_value(-1.0), "clip_by_value: max_delta"),
    (lambda: fo.add_decayed_weights(-0.1), "add_decayed_weights: weight_decay"),
    (lambda: fo.scale_by_schedule(-1.0), "scale_by_schedule: schedule"),
    (lambda: fo.reduce_on_plateau(factor=1.0), "reduce_on_plateau: factor"),
    (lambda: fo.reduce_on_plateau(patience=-1), "reduce_on_plateau: patience"),
    (lambda: fo.reduce_on_plateau(accumulation_size=0), "reduce_on_plateau: accumulation_size"),
    (lambda: fo.reduce_on_plateau(min_scale=2.0), "reduce_on_plateau: min_scale"),
])
def test_bad_arguments_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_add_decayed_weights_needs_params():
    with pytest.raises(ValueError, match="add_decayed_weights: update needs params"):
        fo.add_decayed_weights(0.1).update(PARAMS, ())
