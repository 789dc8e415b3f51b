"""fnn.optim.wrappers (masked, freeze, partition, multi_steps) against optax's wrappers, 100 steps
jitted in one function; plus what optax does not show: frozen leaves keep no state, labels by
path, gradient accumulation equal to the inner rule on mean gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optim_cases import GRADS, MASK, PARAMS, assert_close, run_both, run_fnn

import fnn.optim as fo

LABELS = {"W": "fast", "conv": "slow", "seq": ("fast", "slow")}
by_path = lambda path, leaf: "slow" if path[0] == "conv" or path[:2] == ("seq", 1) else "fast"

ROWS = [  # (fnn optimizer, optax optimizer)
    (fo.masked(fo.adam(0.01), MASK), optax.masked(optax.adam(0.01), MASK)),
    (fo.chain(fo.masked(fo.add_decayed_weights(0.1), MASK), fo.sgd(0.1, momentum=0.9)),
     optax.chain(optax.masked(optax.add_decayed_weights(0.1), MASK), optax.sgd(0.1, momentum=0.9))),
    (fo.partition({"fast": fo.adam(0.01), "slow": fo.sgd(0.001, momentum=0.9)}, LABELS),
     optax.partition({"fast": optax.adam(0.01), "slow": optax.sgd(0.001, momentum=0.9)}, LABELS)),
    (fo.partition({"fast": fo.adam(0.01), "slow": fo.adam(0.001)}, by_path),      # labels by path
     optax.partition({"fast": optax.adam(0.01), "slow": optax.adam(0.001)}, LABELS)),
    (fo.freeze(MASK, fo.adam(0.01)),
     optax.partition({"train": optax.adam(0.01), "frozen": optax.set_to_zero()},
                     jax.tree.map(lambda m: "frozen" if m else "train", MASK))),
    (fo.multi_steps(fo.adam(0.01), 4), optax.MultiSteps(optax.adam(0.01), 4, accumulator_dtype=jnp.float64)),
]


IDS = ["masked", "masked_decay", "partition", "by_path", "freeze", "multi_steps"]


@pytest.mark.parametrize("ours, oracle", ROWS, ids=IDS)
def test_matches_optax_for_100_steps(ours, oracle):
    assert_close(*run_both(ours, oracle, PARAMS, GRADS))


def test_frozen_leaves_get_zero_updates_and_keep_no_state():
    opt = fo.freeze(MASK, fo.adam(0.01))                # True = frozen: W and the vector seq[0]
    state = opt.init(PARAMS)
    mu = state.inner_state.mu
    assert mu["W"] is None and mu["seq"][0] is None and mu["conv"]["kernel"].shape == (3, 3, 2, 4)
    trainable = PARAMS["conv"]["kernel"].size + PARAMS["seq"][1][0].size
    assert sum(x.size for x in jax.tree.leaves(state)) == 2 * trainable + 2        # mu, nu, count, rate
    updates, _ = jax.jit(opt.update)(PARAMS, state, PARAMS)
    assert not np.any(np.asarray(updates["W"])) and not np.any(np.asarray(updates["seq"][0]))
    assert np.all(np.asarray(updates["conv"]["kernel"]) != 0)


def test_freeze_by_path_function_and_without_an_optimizer():
    frozen = lambda path, leaf: path[0] == "conv"
    updates, state = fo.freeze(frozen).update(PARAMS, fo.freeze(frozen).init(PARAMS))
    assert not np.any(np.asarray(updates["conv"]["kernel"]))
    assert np.array_equal(np.asarray(updates["W"]), np.asarray(PARAMS["W"]))


def test_partition_reports_a_rate_per_group_and_refuses_unknown_labels():
    opt = fo.partition({"fast": fo.adam(0.01), "slow": fo.adam(0.001)}, by_path)
    rates = fo.current_learning_rate(opt.init(PARAMS))
    assert {k: float(v) for k, v in rates.items()} == {"fast": 0.01, "slow": 0.001}
    with pytest.raises(ValueError, match=r"partition: labels \['other'\] have no optimizer"):
        fo.partition({"fast": fo.adam(0.01)}, lambda path, leaf: "other").init(PARAMS)
    with pytest.raises(ValueError, match="partition: the labels tree must be a prefix"):
        fo.partition({"fast": fo.adam(0.01)}, {"W": "fast"}).init(PARAMS)


def test_masked_refuses_a_mask_that_is_not_a_prefix_of_the_params():
    with pytest.raises(ValueError, match="masked: the mask tree must be a prefix"):
        fo.masked(fo.adam(0.01), {"W": True, "other": False}).init(PARAMS)


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
