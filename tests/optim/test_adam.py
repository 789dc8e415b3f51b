"""fnn.optim.adam (scale_by_adam, scale_by_amsgrad, scale_by_belief, scale_by_radam) against the
optax transforms of the same names, alone: 100 steps, both jitted in one function, the same
kwargs dict on both sides; the final states must hold optax's fields with optax's values."""
import jax
import jax.numpy as jnp
import optax
import pytest
from optim_cases import GRADS, PARAMS, assert_close, row_ids, run_both

import fnn.optim as fo

ROWS = [  # (fnn transform, optax transform, kwargs)
    (fo.scale_by_adam, optax.scale_by_adam, dict()),
    (fo.scale_by_adam, optax.scale_by_adam, dict(b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, nesterov=True)),
    (fo.scale_by_adam, optax.scale_by_adam, dict(mu_dtype=jnp.float32)),
    (fo.scale_by_amsgrad, optax.scale_by_amsgrad, dict(b2=0.99, bias_correction_mu=False)),
    (fo.scale_by_belief, optax.scale_by_belief, dict(b1=0.8, nesterov=True)),
    (fo.scale_by_radam, optax.scale_by_radam, dict(threshold=4.0)),
]


@pytest.mark.parametrize("ours, oracle, kwargs", ROWS, ids=row_ids(ROWS))
def test_transform_and_its_state_match_optax_for_100_steps(ours, oracle, kwargs):
    (mine, state), (theirs, their_state) = run_both(ours(**kwargs), oracle(**kwargs), PARAMS, GRADS,
                                                    with_state=True)
    assert_close(mine, theirs, rtol=1e-9)              # directions of size ~1, summed 100 times
    assert type(state)._fields == type(their_state)._fields
    for field in their_state._fields:
        assert_close(getattr(state, field), getattr(their_state, field))
    if "mu_dtype" in kwargs:
        assert {x.dtype for x in jax.tree.leaves(state.mu)} == {jnp.dtype(jnp.float32)}


@pytest.mark.parametrize("make, match", [
    (lambda: fo.scale_by_adam(b1=1.0), r"scale_by_adam: b1 must lie in \[0, 1\)"),
    (lambda: fo.scale_by_amsgrad(eps=-1.0), "scale_by_amsgrad: eps"),
    (lambda: fo.scale_by_belief(b2=2.0), "scale_by_belief: b2"),
    (lambda: fo.scale_by_radam(threshold=-1.0), "scale_by_radam: threshold"),
    (lambda: fo.scale_by_nadam(momentum_decay=-1.0), "scale_by_nadam: momentum_decay"),
])
def test_bad_hyperparameters_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()
