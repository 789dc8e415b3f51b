"""fnn.optim.factored (Adafactor's pieces) and fnn.optim.adafactor against optax.adafactor, and its
O(n + m) memory for a matrix.

Oracle: optax.adafactor's own chain (optax/_src/alias.py) with one change: its second-moment
decay b_t = 1 - t^-decay_rate computed in float64, where optax computes it in float32 even
under x64 (a 1e-8 relative gap that would hide real differences). fnn computes b_t in the
default float. Everything else is optax's code, jitted in the same function as fnn.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax._src import factorized
from optim_cases import GRADS, MASK, PARAMS, assert_close, row_ids, run_both

import fnn.optim as fo


def optax_adafactor_f64(learning_rate=None, min_dim_size_to_factor=128, decay_rate=0.8, decay_offset=0,
                        multiply_by_parameter_scale=True, clipping_threshold=1.0, momentum=None,
                        dtype_momentum=jnp.float32, weight_decay_rate=None, eps=1e-30, factored=True,
                        weight_decay_mask=None):
    """optax.adafactor, line for line, with b_t in float64."""
    decay_f64 = lambda step, exponent: 1.0 - jnp.asarray(step + 1, jnp.float64) ** -exponent
    tx = [factorized.scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps,
                                           decay_rate_fn=decay_f64)]
    if clipping_threshold is not None:
        tx.append(optax.clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        tx.append(optax.scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        tx.append(optax.scale_by_param_block_rms())
    if momentum is not None:
        tx.append(optax.ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        tx.append(optax.add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    tx.append(optax.scale(-1))
    return optax.chain(*tx)


ROWS = [  # min_dim_size_to_factor=3 factors W (5, 4) and the kernel (3, 3, 2, 4) over axes (1, 3)
    (fo.adafactor, optax_adafactor_f64, dict(learning_rate=0.01)),
    (fo.adafactor, optax_adafactor_f64, dict(learning_rate=0.01, min_dim_size_to_factor=3)),
    (fo.adafactor, optax_adafactor_f64, dict(learning_rate=fo.cosine_decay(0.01, 100), momentum=0.9,
                                             min_dim_size_to_factor=3, dtype_momentum=jnp.float64,
                                             weight_decay_rate=0.01, weight_decay_mask=MASK, decay_rate=0.5,
                                             decay_offset=0, clipping_threshold=None)),
    (fo.adafactor, optax_adafactor_f64, dict(learning_rate=None, min_dim_size_to_factor=4,
                                             multiply_by_parameter_scale=False, eps=1e-20)),
    (fo.adafactor, optax_adafactor_f64, dict(learning_rate=0.01, factored=False, clipping_threshold=2.0)),
]


@pytest.mark.parametrize("ours, oracle, kwargs", ROWS, ids=row_ids(ROWS))
def test_matches_optax_for_100_steps(ours, oracle, kwargs):
    assert_close(*run_both(ours(**kwargs), oracle(**kwargs), PARAMS, GRADS))


def test_a_matrix_keeps_a_row_and_a_column_not_a_matrix():
    params = {"W": jnp.zeros((256, 512)), "b": jnp.zeros((512,))}
    state = fo.adafactor(1e-3).init(params)
    factored = state[0]
    assert factored.v["W"] is None and factored.v_row["W"].shape == (256,) and factored.v_col["W"].shape == (512,)
    assert factored.v["b"].shape == (512,) and factored.v_row["b"] is None
    stored = sum(np.size(x) for x in jax.tree.leaves(state))
    assert stored == 256 + 512 + 512 + 1          # rows + columns + the bias's full v + count


def test_factored_state_has_optax_fields_and_the_pieces_match_optax():
    assert fo.FactoredState._fields == factorized.FactoredState._fields
    for ours, theirs in ((fo.clip_by_block_rms(0.5), optax.clip_by_block_rms(0.5)),
                         (fo.scale_by_param_block_rms(), optax.scale_by_param_block_rms())):
        assert_close(*run_both(ours, theirs, PARAMS, GRADS))


def test_a_transposed_gradient_is_refused():
    """(6, 4) fits the moments of a (4, 6) leaf (a row of 4, a column of 6): the params tell."""
    params = {"W": jnp.zeros((4, 6))}
    opt = fo.scale_by_factored_rms(min_dim_size_to_factor=2)
    with pytest.raises(ValueError, match=r"scale_by_factored_rms: grads\['W'\] has shape \(6, 4\)"):
        opt.update({"W": jnp.zeros((6, 4))}, opt.init(params), params)


@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=-1.0), "adafactor: learning_rate"),
    (dict(decay_rate=0.0), "adafactor: decay_rate"),
    (dict(clipping_threshold=0.5), "adafactor: clipping_threshold"),
    (dict(momentum=1.0), "adafactor: momentum"),
    (dict(min_dim_size_to_factor=0), "adafactor: min_dim_size_to_factor"),
    (dict(eps=-1.0), "adafactor: eps"),
])
def test_bad_hyperparameters_raise_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fo.adafactor(**kwargs)
