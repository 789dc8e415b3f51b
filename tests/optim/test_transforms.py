"""fnn.optim.transforms (the learning rate, scaling, clipping, weight decay, the trust ratio)
against optax, chained with a direction, 100 steps, both jitted in one function."""
import jax
import jax.numpy as jnp
import optax
import pytest
from optim_cases import GRADS, MASK, PARAMS, assert_close, run_both

import fnn.optim as fo

COSINE = fo.cosine_decay(0.01, 100)

ROWS = [  # (fnn optimizer, optax optimizer)
    (fo.chain(fo.clip_by_global_norm(1.0), fo.sgd(0.1, momentum=0.9)),
     optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1, momentum=0.9))),
    (fo.chain(fo.clip_by_global_norm(9.0), fo.adam(0.01)),          # clips some steps, not others
     optax.chain(optax.clip_by_global_norm(9.0), optax.adam(0.01))),
    (fo.chain(fo.clip_by_value(0.5), fo.sgd(0.1)), optax.chain(optax.clip(0.5), optax.sgd(0.1))),
    (fo.chain(fo.add_decayed_weights(0.1, MASK), fo.sgd(0.1)),
     optax.chain(optax.add_decayed_weights(0.1, MASK), optax.sgd(0.1))),
    (fo.chain(fo.scale_by_adam(), fo.scale_by_learning_rate(COSINE)),
     optax.chain(optax.scale_by_adam(), optax.scale_by_learning_rate(COSINE))),
    (fo.chain(fo.scale_by_learning_rate(COSINE, flip_sign=False), fo.scale(-2.0)),
     optax.chain(optax.scale_by_learning_rate(COSINE, flip_sign=False), optax.scale(-2.0))),
    (fo.chain(fo.scale_by_adam(), fo.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.1, eps=1e-3),
              fo.scale_by_learning_rate(0.01)),
     optax.chain(optax.scale_by_adam(), optax.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.1, eps=1e-3),
                 optax.scale_by_learning_rate(0.01))),
]
IDS = ["clip_1", "clip_9", "clip_value", "decay", "schedule", "no_flip", "trust_ratio"]


@pytest.mark.parametrize("ours, oracle", ROWS, ids=IDS)
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


def test_scale_by_learning_rate_alone_knows_the_rate():
    """A float keeps no state, a schedule a count; the Optimizer carries the schedule."""
    assert fo.scale_by_learning_rate(0.1).init(PARAMS) == ()
    assert fo.learning_rate_at(fo.scale_by_learning_rate(0.1), 7) == pytest.approx(0.1)
    scheduled = fo.scale_by_learning_rate(COSINE)
    assert scheduled.learning_rate is COSINE and int(scheduled.init(PARAMS).count) == 0
    assert fo.scale_by_adam().learning_rate is None


@pytest.mark.parametrize("make, match", [
    (lambda: fo.clip_by_global_norm(0.0), "clip_by_global_norm: max_norm"),
    (lambda: fo.clip_by_value(-1.0), "clip_by_value: max_delta"),
    (lambda: fo.add_decayed_weights(-0.1), "add_decayed_weights: weight_decay"),
    (lambda: fo.scale_by_learning_rate(-1.0), "scale_by_learning_rate: learning_rate"),
    (lambda: fo.scale(float("nan")), "scale: step_size"),
    (lambda: fo.scale_by_trust_ratio(trust_coefficient=0.0), "scale_by_trust_ratio: trust_coefficient"),
])
def test_bad_arguments_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_add_decayed_weights_and_the_trust_ratio_need_params():
    with pytest.raises(ValueError, match="add_decayed_weights: update needs params"):
        fo.add_decayed_weights(0.1).update(PARAMS, ())
    with pytest.raises(ValueError, match="scale_by_trust_ratio: update needs params"):
        fo.scale_by_trust_ratio().update(PARAMS, ())


def test_a_mask_that_does_not_fit_names_the_function_and_shows_the_mask():
    with pytest.raises(ValueError, match=r"add_decayed_weights: the mask \{'W': True\} does not fit"):
        fo.add_decayed_weights(0.1, {"W": True}).update(PARAMS, (), PARAMS)
