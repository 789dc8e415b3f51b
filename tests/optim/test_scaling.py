"""fnn.optim.scaling (scale_by_rms, scale_by_rss, trace, ema, scale_by_lion) against the optax
transforms, alone: 100 steps, both jitted in one function, the same kwargs on both sides; the
final states hold optax's fields with optax's values (fnn's scale_by_rms(centered=True) is
optax's scale_by_stddev)."""
import jax
import jax.numpy as jnp
import optax
import pytest
from optim_cases import GRADS, PARAMS, assert_close, row_ids, run_both

import fnn.optim as fo

stddev = lambda centered, **kwargs: optax.scale_by_stddev(**kwargs)   # fnn's centered=True

ROWS = [  # (fnn transform, optax transform, kwargs)
    (fo.scale_by_rms, optax.scale_by_rms, dict()),
    (fo.scale_by_rms, optax.scale_by_rms, dict(decay=0.95, eps=1e-6, initial_scale=1.0, eps_in_sqrt=False)),
    (fo.scale_by_rms, optax.scale_by_rms, dict(bias_correction=True)),
    (fo.scale_by_rms, stddev, dict(centered=True, eps=1e-4, bias_correction=True)),
    (fo.scale_by_rss, optax.scale_by_rss, dict()),
    (fo.scale_by_rss, optax.scale_by_rss, dict(initial_accumulator_value=0.0, eps=1e-10)),
    (fo.trace, optax.trace, dict(decay=0.9)),
    (fo.trace, optax.trace, dict(decay=0.5, nesterov=True, accumulator_dtype=jnp.float32)),
    (fo.ema, optax.ema, dict(decay=0.9)),
    (fo.ema, optax.ema, dict(decay=0.8, debias=False)),
    (fo.scale_by_lion, optax.scale_by_lion, dict(b1=0.95, b2=0.98)),
]


@pytest.mark.parametrize("ours, oracle, kwargs", ROWS, ids=row_ids(ROWS))
def test_transform_and_its_state_match_optax_for_100_steps(ours, oracle, kwargs):
    (mine, state), (theirs, their_state) = run_both(ours(**kwargs), oracle(**kwargs), PARAMS, GRADS,
                                                    with_state=True)
    assert_close(mine, theirs, rtol=1e-9)              # directions of size ~1, summed 100 times
    assert set(type(their_state)._fields) <= set(type(state)._fields)
    for field in type(their_state)._fields:
        assert_close(getattr(state, field), getattr(their_state, field))


def test_accumulators_keep_their_dtype_and_updates_the_gradients():
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), PARAMS)
    for opt in (fo.trace(0.9, accumulator_dtype=jnp.float32), fo.ema(0.9, accumulator_dtype=jnp.float32)):
        updates, state = jax.eval_shape(opt.update, params, opt.init(params))
        assert {x.dtype for x in jax.tree.leaves(updates)} == {jnp.dtype(jnp.bfloat16)}
        assert {x.dtype for x in jax.tree.leaves(state[-1])} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize("make, match", [
    (lambda: fo.scale_by_rms(decay=1.5), "scale_by_rms: decay"),
    (lambda: fo.scale_by_rss(eps=-1.0), "scale_by_rss: eps"),
    (lambda: fo.trace(1.0), r"trace: decay must lie in \[0, 1\)"),
    (lambda: fo.ema(-0.1), "ema: decay"),
    (lambda: fo.scale_by_lion(b2=1.0), "scale_by_lion: b2"),
])
def test_bad_hyperparameters_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()
