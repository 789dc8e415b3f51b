"""fnn.optim.wrappers (masked, freeze, partition, multi_steps) against optax's wrappers, 100 steps
jitted in one function; plus what optax does not show: frozen leaves keep no state, masks as
functions of the params, errors that name the function called and show the mask given, the
learning rate passed through, gradient accumulation equal to the inner rule on mean gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optim_cases import GRADS, MASK, PARAMS, assert_close, run_both, run_fnn

import fnn.optim as fo

LABELS = {"W": "fast", "conv": "slow", "seq": ("fast", "slow")}
labels_of = lambda params: {"W": "fast", "conv": "slow", "seq": ("fast", "slow")}   # a function of the params

ROWS = [  # (fnn optimizer, optax optimizer)
    (fo.masked(fo.adam(0.01), MASK), optax.masked(optax.adam(0.01), MASK)),
    (fo.chain(fo.masked(fo.add_decayed_weights(0.1), MASK), fo.sgd(0.1, momentum=0.9)),
     optax.chain(optax.masked(optax.add_decayed_weights(0.1), MASK), optax.sgd(0.1, momentum=0.9))),
    (fo.partition({"fast": fo.adam(0.01), "slow": fo.sgd(0.001, momentum=0.9)}, LABELS),
     optax.partition({"fast": optax.adam(0.01), "slow": optax.sgd(0.001, momentum=0.9)}, LABELS)),
    (fo.partition({"fast": fo.adam(0.01), "slow": fo.adam(0.001)}, labels_of),     # labels by function
     optax.partition({"fast": optax.adam(0.01), "slow": optax.adam(0.001)}, labels_of)),
    (fo.freeze(MASK, fo.adam(0.01)),
     optax.partition({"train": optax.adam(0.01), "frozen": optax.set_to_zero()},
                     jax.tree.map(lambda m: "frozen" if m else "train", MASK))),
    (fo.multi_steps(fo.adam(0.01), 4), optax.MultiSteps(optax.adam(0.01), 4, accumulator_dtype=jnp.float64)),
]
IDS = ["masked", "masked_decay", "partition", "labels_function", "freeze", "multi_steps"]


@pytest.mark.parametrize("ours, oracle", ROWS, ids=IDS)
def test_matches_optax_for_100_steps(ours, oracle):
    assert_close(*run_both(ours, oracle, PARAMS, GRADS))


def test_frozen_leaves_get_zero_updates_and_keep_no_state():
    opt = fo.freeze(MASK, fo.adam(0.01))                # True = frozen: W and the vector seq[0]
    state = opt.init(PARAMS)
    mu = state.inner_state[0].mu
    assert mu["W"] is None and mu["seq"][0] is None and mu["conv"]["kernel"].shape == (3, 3, 2, 4)
    trainable = PARAMS["conv"]["kernel"].size + PARAMS["seq"][1][0].size
    assert sum(x.size for x in jax.tree.leaves(state)) == 2 * trainable + 1        # mu, nu, count
    updates, _ = jax.jit(opt.update)(PARAMS, state, PARAMS)
    assert not np.any(np.asarray(updates["W"])) and not np.any(np.asarray(updates["seq"][0]))
    assert np.all(np.asarray(updates["conv"]["kernel"]) != 0)


def test_freeze_by_a_function_of_the_params_and_without_an_optimizer():
    frozen = lambda params: {"W": False, "conv": True, "seq": False}
    opt = fo.freeze(frozen)
    updates, _ = opt.update(PARAMS, opt.init(PARAMS))
    assert not np.any(np.asarray(updates["conv"]["kernel"]))
    assert np.array_equal(np.asarray(updates["W"]), np.asarray(PARAMS["W"]))


def test_a_mask_that_does_not_fit_names_the_function_called_and_shows_the_mask_given():
    two_leaves = (jnp.ones(2), jnp.ones(3))
    with pytest.raises(ValueError, match=r"freeze: the mask \(True, False, True\) does not fit"):
        fo.freeze((True, False, True), fo.adam(0.01)).init(two_leaves)
    with pytest.raises(ValueError, match=r"masked: the mask \{'W': True, 'other': False\} does not fit"):
        fo.masked(fo.adam(0.01), {"W": True, "other": False}).init(PARAMS)
    with pytest.raises(ValueError, match=r"partition: the param_labels \{'W': 'fast'\} does not fit"):
        fo.partition({"fast": fo.adam(0.01)}, {"W": "fast"}).init(PARAMS)
    with pytest.raises(ValueError, match=r"freeze: the mask <function .*, which gave \(True,\), does not fit"):
        fo.freeze(lambda params: (True,)).init(two_leaves)


def test_partition_refuses_unknown_labels():
    with pytest.raises(ValueError, match=r"partition: labels \['other'\] have no transform"):
        fo.partition({"fast": fo.adam(0.01)}, lambda params: "other").init(PARAMS)


def test_wrappers_pass_the_learning_rate_on_when_it_is_unambiguous():
    schedule = fo.cosine_decay(0.1, 10)
    assert fo.learning_rate_at(fo.freeze(MASK, fo.adam(schedule)), 5) == pytest.approx(float(schedule(5)))
    assert fo.learning_rate_at(fo.masked(fo.sgd(0.3), MASK), 2) == pytest.approx(0.3)
    groups = fo.partition({"fast": fo.adam(schedule), "slow": fo.freeze(True)}, LABELS)
    assert fo.learning_rate_at(groups, 5) == pytest.approx(float(schedule(5)))
    assert fo.learning_rate_at(fo.partition({"fast": fo.adam(0.1), "slow": fo.adam(0.01)}, LABELS), 0) is None
    assert fo.learning_rate_at(fo.multi_steps(fo.adam(schedule), 4), 9) == pytest.approx(float(schedule(2)))


def test_multi_steps_applies_the_inner_rule_to_mean_gradients():
    k = 4
    accumulated = run_fnn(fo.multi_steps(fo.adam(0.01), k), PARAMS, GRADS)
    means = jax.tree.map(lambda g: g.reshape(-1, k, *g.shape[1:]).mean(1), GRADS)
    assert_close(accumulated, run_fnn(fo.adam(0.01), PARAMS, means), rtol=1e-12)
    opt = fo.multi_steps(fo.adam(0.01), k)
    updates, state = opt.update(PARAMS, opt.init(PARAMS), PARAMS)
    assert not np.any(np.asarray(updates["W"]))
    assert int(state.mini_step) == 1 and int(state.gradient_step) == 0


def test_multi_steps_refuses_k_below_one():
    with pytest.raises(ValueError, match="multi_steps: k must be an int >= 1"):
        fo.multi_steps(fo.adam(0.01), 0)


def test_freeze_and_decay_by_layer_name_with_select():
    """fnn.select(model, "trunk") is a function params -> tree of bools: freeze and mask= take it."""
    from fnn import layers
    from fnn.layers.combinators import serial
    from fnn.paths import select

    model = serial(serial(layers.Dense(8), layers.Relu(), name="trunk"), layers.Dense(3, name="head"))
    _, params, _ = model.init(jax.random.PRNGKey(0), (4,))
    grads = jax.tree.map(jnp.ones_like, params)
    opt = fo.freeze(select(model, "trunk"), fo.adamw(0.01, mask=select(model, "W")))
    updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
    assert not any(np.any(np.asarray(u)) for u in jax.tree.leaves(updates[0]))
    assert all(np.all(np.asarray(u) != 0) for u in jax.tree.leaves(updates[1]))
