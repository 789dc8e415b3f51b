"""fnn.optim.schedules: each schedule against its formula written in NumPy and against its optax
counterpart (the same argument names).

Evaluated jitted and vmapped over counts 0..89 (past every schedule's end). The NumPy formula
must agree to 1e-12 relative. optax must agree to 1e-12 of the schedule's peak where it computes
in float64; its linear, exponential and one-cycle schedules work in float32 even under x64
(their result, or the phase fraction t / steps), so those rows allow 1e-6 of the peak.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn.optim as fo

T = np.arange(90)


def _cos(start, end, frac):
    return end + (start - end) / 2 * (1 + np.cos(np.pi * np.clip(frac, 0, 1)))


ROWS = [  # (fnn schedule, NumPy formula of t, optax schedule, tolerance against optax)
    (fo.constant(0.1), lambda t: 0.1 + 0 * t, optax.constant_schedule(0.1), 1e-12),
    (fo.step_decay(0.1, 7, 0.5), lambda t: 0.1 * 0.5 ** (t // 7),
     optax.exponential_decay(0.1, 7, 0.5, staircase=True), 1e-6),
    (fo.exponential_decay(0.1, 5, 0.9, end_value=0.02), lambda t: np.maximum(0.1 * 0.9 ** (t / 5), 0.02),
     optax.exponential_decay(0.1, 5, 0.9, end_value=0.02), 1e-6),
    (fo.exponential_decay(0.1, 5, 0.9, staircase=True), lambda t: 0.1 * 0.9 ** (t // 5),
     optax.exponential_decay(0.1, 5, 0.9, staircase=True), 1e-6),
    (fo.exponential_decay(0.1, 5, 0.9, transition_begin=10),
     lambda t: 0.1 * 0.9 ** (np.maximum(t - 10, 0) / 5),
     optax.exponential_decay(0.1, 5, 0.9, transition_begin=10), 1e-6),
    (fo.cosine_decay(0.1, 50, alpha=0.1), lambda t: 0.01 + 0.045 * (1 + np.cos(np.pi * np.minimum(t, 50) / 50)),
     optax.cosine_decay_schedule(0.1, 50, alpha=0.1), 1e-12),
    (fo.cosine_decay(0.1, 50, exponent=2.0), lambda t: 0.1 * (0.5 * (1 + np.cos(np.pi * np.minimum(t, 50) / 50))) ** 2,
     optax.cosine_decay_schedule(0.1, 50, exponent=2.0), 1e-12),
    (fo.linear_schedule(0.01, 0.1, 20), lambda t: 0.01 + 0.09 * np.minimum(t, 20) / 20,
     optax.linear_schedule(0.01, 0.1, 20), 1e-6),
    (fo.linear_schedule(0.1, 0.0, 30, transition_begin=40), lambda t: 0.1 - 0.1 * np.clip(t - 40, 0, 30) / 30,
     optax.linear_schedule(0.1, 0.0, 30, transition_begin=40), 1e-6),
    (fo.warmup_cosine(0.01, 0.1, 10, 60, 0.001),
     lambda t: np.where(t < 10, 0.01 + 0.09 * t / 10, _cos(0.1, 0.001, (t - 10) / 50)),
     optax.warmup_cosine_decay_schedule(0.01, 0.1, 10, 60, 0.001), 1e-6),
    (fo.one_cycle(60, 0.1),
     lambda t: np.where(t < 18, _cos(0.004, 0.1, t / 18), _cos(0.1, 4e-7, (t - 18) / 42)),
     optax.cosine_onecycle_schedule(60, 0.1), 1e-6),
    (fo.piecewise_constant(0.1, {10: 0.5, 30: 0.2}),
     lambda t: np.select([t < 10, t < 30], [0.1, 0.05], 0.01),
     optax.piecewise_constant_schedule(0.1, {10: 0.5, 30: 0.2}), 1e-12),
]


def _values(schedule):
    with jax.numpy_dtype_promotion("standard"):          # optax's schedules need it; fnn's do not care
        return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(T, jnp.int32)), np.float64)


@pytest.mark.parametrize("ours, formula, oracle, tol", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_schedule_matches_its_formula_and_optax(ours, formula, oracle, tol):
    values = np.asarray(jax.jit(jax.vmap(ours))(jnp.asarray(T, jnp.int32)))  # strict promotion here
    assert values.dtype == np.float64
    np.testing.assert_allclose(values, formula(T), rtol=1e-12, atol=1e-16)   # XLA divides by a reciprocal
    theirs = _values(oracle)
    np.testing.assert_allclose(values, theirs, rtol=0, atol=tol * np.max(theirs))


def test_schedules_accept_python_ints_and_traced_counts():
    schedule = fo.warmup_cosine(0.0, 0.1, 10, 60)
    assert float(schedule(5)) == pytest.approx(0.05)
    assert float(jax.jit(schedule)(jnp.int32(5))) == pytest.approx(0.05)
    assert float(fo.piecewise_constant(0.1, {3: 0.5})(4)) == pytest.approx(0.05)


def test_optax_argument_names_pass_across_unchanged():
    kwargs = dict(init_value=0.2, peak_value=1.0, warmup_steps=5, decay_steps=40, end_value=0.1)
    ours, theirs = fo.warmup_cosine(**kwargs), optax.warmup_cosine_decay_schedule(**kwargs)
    np.testing.assert_allclose(_values(ours), _values(theirs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("make, match", [
    (lambda: fo.constant(-0.1), "constant: value must lie in"),
    (lambda: fo.step_decay(0.1, 10, 0.0), "exponential_decay: decay_rate"),
    (lambda: fo.step_decay(0.1, 0, 0.5), "exponential_decay: transition_steps"),
    (lambda: fo.exponential_decay(-1.0, 1, 0.5), "exponential_decay: init_value"),
    (lambda: fo.cosine_decay(0.1, 0), "cosine_decay: decay_steps"),
    (lambda: fo.cosine_decay(0.1, 10, alpha=-1.0), "cosine_decay: alpha"),
    (lambda: fo.linear_schedule(0.0, 0.1, -1), "linear_schedule: transition_steps"),
    (lambda: fo.linear_schedule(-0.1, 0.1, 10), "linear_schedule: init_value"),
    (lambda: fo.warmup_cosine(0.0, 0.1, 10, 10), "warmup_cosine: warmup_steps must be < decay_steps"),
    (lambda: fo.warmup_cosine(0.0, -0.1, 10, 100), "warmup_cosine: peak_value"),
    (lambda: fo.one_cycle(100, 0.1, pct_start=1.0), "one_cycle: pct_start"),
    (lambda: fo.piecewise_constant(0.1, {10: -0.5}), r"piecewise_constant: boundaries_and_scales\[10\]"),
    (lambda: fo.piecewise_constant(0.1, {-1: 0.5}), "piecewise_constant: each boundary"),
])
def test_bad_arguments_raise_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("decay_steps, period_factor, end_value", [(10, 1, 0.0), (7, 2, 1e-3), (5, 3, 0.01)])
def test_cosine_warm_restarts_equals_pytorch_step_by_step(decay_steps, period_factor, end_value):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    sgd = torch.optim.SGD([p], lr=0.1)
    sgdr = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(sgd, T_0=decay_steps, T_mult=period_factor,
                                                                eta_min=end_value)
    theirs = []
    for _ in range(400):
        theirs.append(sgd.param_groups[0]["lr"])
        sgd.step()
        sgdr.step()
    ours = fo.cosine_warm_restarts(0.1, decay_steps, period_factor, end_value)
    values = np.asarray(jax.jit(jax.vmap(ours))(jnp.arange(400, dtype=jnp.int32)))
    np.testing.assert_allclose(values, theirs, rtol=0, atol=1e-15)
    assert values[0] == pytest.approx(0.1) and float(ours(decay_steps)) == pytest.approx(0.1)   # a restart


def test_cosine_warm_restarts_checks_its_arguments():
    with pytest.raises(ValueError, match="cosine_warm_restarts: period_factor"):
        fo.cosine_warm_restarts(0.1, 10, 0)
    with pytest.raises(ValueError, match="cosine_warm_restarts: decay_steps"):
        fo.cosine_warm_restarts(0.1, 0)
