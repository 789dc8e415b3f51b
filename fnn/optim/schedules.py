"""Learning-rate schedules: functions `count -> rate`, count the number of earlier updates.

Arguments carry optax's names (init_value, peak_value, end_value, transition_steps,
decay_steps, warmup_steps, decay_rate, staircase, alpha, exponent) and each schedule equals
its optax counterpart step for step (tested). Every schedule is jit-compatible (count may be
a traced int32) and returns a scalar in the default float (float64 with x64, else float32);
`scale_by_learning_rate` casts it to each parameter's dtype. Arguments are checked when built.
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from .base import Schedule, as_schedule, check_int, check_ranges, float_dtype


def _steps(count) -> jax.Array:
    return jnp.asarray(count).astype(float_dtype())


def _cosine(start: float, end: float, fraction: jax.Array) -> jax.Array:
    """end + (start - end)/2 (1 + cos(pi f)), f clipped to [0, 1]: start at f=0, end at f=1."""
    return end + (start - end) / 2 * (1 + jnp.cos(jnp.pi * jnp.clip(fraction, 0.0, 1.0)))


def constant(value: float) -> Schedule:
    """lr(t) = value (optax.constant_schedule)."""
    return as_schedule(value, "constant", "value")


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """lr(t) = init_value + (end_value - init_value) clip(t - transition_begin, 0, transition_steps)
    / transition_steps: a linear warmup (or decay), then end_value (optax.linear_schedule)."""
    check_ranges("linear_schedule", init_value=(init_value, "[0, inf)"), end_value=(end_value, "[0, inf)"))
    check_int("linear_schedule", "transition_steps", transition_steps, 0)
    check_int("linear_schedule", "transition_begin", transition_begin, 0)
    if transition_steps == 0:
        return constant(init_value)
    def schedule(count):
        remaining = 1 - jnp.clip(_steps(count) - transition_begin, 0, transition_steps) / transition_steps
        return (init_value - end_value) * remaining + end_value     # exactly end_value at the end

    return schedule


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float, transition_begin: int = 0,
                      staircase: bool = False, end_value: float | None = None) -> Schedule:
    """lr(t) = init_value decay_rate^(p), p = (t - transition_begin) / transition_steps (floored if
    staircase; init_value before transition_begin), bounded by end_value (optax.exponential_decay)."""
    check_ranges("exponential_decay", init_value=(init_value, "[0, inf)"), decay_rate=(decay_rate, "(0, inf)"),
                 end_value=(end_value, "[0, inf)"))
    check_int("exponential_decay", "transition_steps", transition_steps, 1)
    check_int("exponential_decay", "transition_begin", transition_begin, 0)
    bound = jnp.maximum if decay_rate < 1.0 else jnp.minimum

    def schedule(count):
        exponent = jnp.maximum(_steps(count) - transition_begin, 0.0) / transition_steps
        value = init_value * decay_rate ** (jnp.floor(exponent) if staircase else exponent)
        return value if end_value is None else bound(value, end_value)

    return schedule


def step_decay(init_value: float, transition_steps: int, decay_rate: float) -> Schedule:
    """lr(t) = init_value decay_rate^floor(t / transition_steps): the step decay lr0 gamma^floor(t /
    step_size) of PyTorch's StepLR (optax.exponential_decay with staircase=True)."""
    return exponential_decay(init_value, transition_steps, decay_rate, staircase=True)


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Schedule:
    """lr(t) = init_value ((1 - alpha) c^exponent + alpha), c = (1 + cos(pi min(t, decay_steps) /
    decay_steps)) / 2 (SGDR without restarts, Loshchilov & Hutter 2017; optax.cosine_decay_schedule)."""
    check_ranges("cosine_decay", init_value=(init_value, "[0, inf)"), alpha=(alpha, "[0, 1]"),
                 exponent=(exponent, "(0, inf)"))
    check_int("cosine_decay", "decay_steps", decay_steps, 1)

    def schedule(count):
        c = _cosine(1.0, 0.0, _steps(count) / decay_steps)
        return init_value * ((1 - alpha) * c ** exponent + alpha)

    return schedule


def warmup_cosine(init_value: float, peak_value: float, warmup_steps: int, decay_steps: int,
                  end_value: float = 0.0, exponent: float = 1.0) -> Schedule:
    """Linear warmup from init_value to peak_value over warmup_steps, then cosine decay to end_value
    at t = decay_steps (the total, warmup included), as optax.warmup_cosine_decay_schedule."""
    check_ranges("warmup_cosine", init_value=(init_value, "[0, inf)"), peak_value=(peak_value, "[0, inf)"),
                 end_value=(end_value, "[0, inf)"))
    check_int("warmup_cosine", "warmup_steps", warmup_steps, 0)
    check_int("warmup_cosine", "decay_steps", decay_steps, 1)
    if warmup_steps >= decay_steps:
        raise ValueError(f"warmup_cosine: warmup_steps must be < decay_steps, got {warmup_steps} >= {decay_steps}")
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    decay = cosine_decay(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return lambda count: jnp.where(_steps(count) < warmup_steps, warmup(count),
                                   decay(_steps(count) - warmup_steps))


def one_cycle(transition_steps: int, peak_value: float, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> Schedule:
    """One-cycle policy (Smith & Topin 2018), cosine form (optax.cosine_onecycle_schedule, PyTorch's
    OneCycleLR): from peak_value / div_factor up to peak_value at t = int(pct_start
    transition_steps), then down to peak_value / (div_factor final_div_factor) at transition_steps."""
    check_ranges("one_cycle", peak_value=(peak_value, "[0, inf)"), pct_start=(pct_start, "(0, 1)"),
                 div_factor=(div_factor, "(0, inf)"), final_div_factor=(final_div_factor, "(0, inf)"))
    check_int("one_cycle", "transition_steps", transition_steps, 1)
    up = int(pct_start * transition_steps)
    start, end = peak_value / div_factor, peak_value / (div_factor * final_div_factor)

    def schedule(count):
        t = _steps(count)
        rise = _cosine(start, peak_value, t / max(up, 1))
        return jnp.where(t < up, rise, _cosine(peak_value, end, (t - up) / max(transition_steps - up, 1)))

    return schedule


def piecewise_constant(init_value: float, boundaries_and_scales: Mapping[int, float] | None = None) -> Schedule:
    """lr(t) = init_value times every scale whose boundary is <= t, e.g. {30: 0.1, 60: 0.1} divides
    the rate by 10 at steps 30 and 60 (optax.piecewise_constant_schedule)."""
    check_ranges("piecewise_constant", init_value=(init_value, "[0, inf)"))
    pairs = sorted((boundaries_and_scales or {}).items())
    for boundary, factor in pairs:
        check_int("piecewise_constant", "each boundary", boundary, 0)
        check_ranges("piecewise_constant", **{f"boundaries_and_scales[{boundary}]": (factor, "[0, inf)")})
    values, value = [init_value], init_value
    for _, factor in pairs:
        value *= factor
        values.append(value)
    table, edges = jnp.asarray(values, float_dtype()), jnp.asarray([b for b, _ in pairs], float_dtype())
    return lambda count: table[jnp.sum(_steps(count) >= edges)]


def cosine_warm_restarts(init_value: float, decay_steps: int, period_factor: int = 1,
                         end_value: float = 0.0) -> Schedule:
    """SGDR (Loshchilov & Hutter 2017): cosine decay from init_value to end_value over a period,
    then a restart; period i lasts decay_steps period_factor^i steps. Within a period,
    lr(t) = end_value + (init_value - end_value) (1 + cos(pi t_cur / T_i)) / 2. Equals PyTorch's
    CosineAnnealingWarmRestarts(T_0=decay_steps, T_mult=period_factor, eta_min=end_value) step by step."""
    check_ranges("cosine_warm_restarts", init_value=(init_value, "[0, inf)"), end_value=(end_value, "[0, inf)"))
    check_int("cosine_warm_restarts", "decay_steps", decay_steps, 1)
    check_int("cosine_warm_restarts", "period_factor", period_factor, 1)
    starts, length = [0], decay_steps          # the restarts below 2^31 (exact ints, no float log)
    while period_factor > 1 and starts[-1] + length < 2**31:
        starts.append(starts[-1] + length)
        length *= period_factor
    edges = jnp.asarray(starts, jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
    periods = jnp.asarray([decay_steps * period_factor ** i for i in range(len(starts))], float_dtype())

    def schedule(count):
        t = jnp.asarray(count).astype(edges.dtype)
        if period_factor == 1:
            return _cosine(init_value, end_value, (t % decay_steps).astype(float_dtype()) / decay_steps)
        i = jnp.sum(t >= edges) - 1
        return _cosine(init_value, end_value, (t - edges[i]).astype(float_dtype()) / periods[i])

    return schedule
