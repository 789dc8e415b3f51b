"""Learning-rate schedules: functions `count -> rate`, where count is the number of earlier updates.

Every schedule is jit-compatible (count may be a traced int32) and returns a scalar in the
default float (float64 with x64, else float32); rules cast it to each parameter's dtype.
Arguments are checked when the schedule is built.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .base import Schedule, check_int, check_ranges, float_dtype


def _steps(count) -> jax.Array:
    return jnp.asarray(count).astype(float_dtype())


def _cosine(start: float, end: float, fraction: jax.Array) -> jax.Array:
    """end + (start - end)/2 (1 + cos(pi f)), f clipped to [0, 1]: start at f=0, end at f=1."""
    return end + (start - end) / 2 * (1 + jnp.cos(jnp.pi * jnp.clip(fraction, 0.0, 1.0)))


def constant(value: float) -> Schedule:
    """lr(t) = value."""
    check_ranges("constant", value=(value, "[0, inf)"))
    return lambda count: jnp.full([], value, float_dtype())


def step_decay(lr0: float, gamma: float, step_size: int) -> Schedule:
    """lr(t) = lr0 gamma^floor(t / step_size)  (PyTorch's StepLR)."""
    check_ranges("step_decay", lr0=(lr0, "[0, inf)"), gamma=(gamma, "(0, 1]"))
    check_int("step_decay", "step_size", step_size, 1)
    return lambda count: lr0 * gamma ** jnp.floor(_steps(count) / step_size)


def exponential_decay(lr0: float, decay_rate: float, decay_steps: int = 1, staircase: bool = False,
                      lr_min: float = 0.0) -> Schedule:
    """lr(t) = max(lr0 decay_rate^(t / decay_steps), lr_min); staircase floors the exponent.

    optax.exponential_decay(lr0, decay_steps, decay_rate, staircase=..., end_value=lr_min).
    """
    check_ranges("exponential_decay", lr0=(lr0, "[0, inf)"), decay_rate=(decay_rate, "(0, 1]"),
                 lr_min=(lr_min, "[0, inf)"))
    check_int("exponential_decay", "decay_steps", decay_steps, 1)

    def schedule(count):
        exponent = _steps(count) / decay_steps
        return jnp.maximum(lr0 * decay_rate ** (jnp.floor(exponent) if staircase else exponent), lr_min)

    return schedule


def cosine_decay(lr_max: float, total: int, lr_min: float = 0.0) -> Schedule:
    """lr(t) = lr_min + (lr_max - lr_min)/2 (1 + cos(pi min(t, total) / total)) (SGDR without restarts,
    Loshchilov & Hutter 2017; optax.cosine_decay_schedule with alpha = lr_min / lr_max)."""
    check_ranges("cosine_decay", lr_max=(lr_max, "[0, inf)"), lr_min=(lr_min, "[0, inf)"))
    check_int("cosine_decay", "total", total, 1)
    return lambda count: _cosine(lr_max, lr_min, _steps(count) / total)


def linear_warmup(lr_init: float, lr_peak: float, warmup_steps: int) -> Schedule:
    """lr(t) = lr_init + (lr_peak - lr_init) min(t, warmup_steps) / warmup_steps, then lr_peak
    (optax.linear_schedule's argument order)."""
    check_ranges("linear_warmup", lr_init=(lr_init, "[0, inf)"), lr_peak=(lr_peak, "[0, inf)"))
    check_int("linear_warmup", "warmup_steps", warmup_steps, 0)
    if warmup_steps == 0:
        return constant(lr_peak)
    rise = lr_peak - lr_init
    return lambda count: lr_init + rise * jnp.minimum(_steps(count), warmup_steps) / warmup_steps


def warmup_cosine(lr_init: float, lr_peak: float, warmup_steps: int, total: int,
                  lr_min: float = 0.0) -> Schedule:
    """Linear warmup from lr_init to lr_peak over warmup_steps, then cosine decay to lr_min at
    t = total (optax.warmup_cosine_decay_schedule, same argument order, decay_steps = total)."""
    check_ranges("warmup_cosine", lr_init=(lr_init, "[0, inf)"), lr_peak=(lr_peak, "[0, inf)"),
                 lr_min=(lr_min, "[0, inf)"))
    check_int("warmup_cosine", "total", total, 1)
    check_int("warmup_cosine", "warmup_steps", warmup_steps, 0)
    if warmup_steps >= total:
        raise ValueError(f"warmup_cosine: warmup_steps must be < total, got {warmup_steps} >= {total}")
    warmup = linear_warmup(lr_init, lr_peak, warmup_steps)
    decay = cosine_decay(lr_peak, total - warmup_steps, lr_min)
    return lambda count: jnp.where(_steps(count) < warmup_steps, warmup(count),
                                   decay(_steps(count) - warmup_steps))


def one_cycle(total: int, lr_max: float, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> Schedule:
    """One-cycle policy (Smith & Topin 2018), cosine form as PyTorch's OneCycleLR and
    optax.cosine_onecycle_schedule (same argument order): from lr_max / div_factor up to lr_max
    at t = int(pct_start total), then down to lr_max / (div_factor final_div_factor) at t = total,
    and constant after."""
    check_ranges("one_cycle", lr_max=(lr_max, "[0, inf)"), pct_start=(pct_start, "(0, 1)"),
                 div_factor=(div_factor, "(0, inf)"), final_div_factor=(final_div_factor, "(0, inf)"))
    check_int("one_cycle", "total", total, 1)
    up = int(pct_start * total)
    start, end = lr_max / div_factor, lr_max / (div_factor * final_div_factor)

    def schedule(count):
        t = _steps(count)
        rise = _cosine(start, lr_max, t / max(up, 1))
        return jnp.where(t < up, rise, _cosine(lr_max, end, (t - up) / max(total - up, 1)))

    return schedule


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """lr(t) = values[i] for boundaries[i-1] <= t < boundaries[i] (len(values) = len(boundaries) + 1)."""
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"piecewise_constant: values needs len(boundaries) + 1 = {len(boundaries) + 1} "
                         f"entries, got {len(values)}")
    if any(b <= a for a, b in zip(boundaries[:-1], boundaries[1:], strict=True)):
        raise ValueError(f"piecewise_constant: boundaries must increase, got {list(boundaries)}")
    for i, v in enumerate(values):
        check_ranges("piecewise_constant", **{f"values[{i}]": (v, "[0, inf)")})
    table, edges = jnp.asarray(values, float_dtype()), jnp.asarray(boundaries, jnp.int32)
    return lambda count: table[jnp.sum(jnp.asarray(count) >= edges)]
