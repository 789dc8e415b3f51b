"""Connectionist temporal classification (Graves et al. 2006), with its gradient by hand.

Arguments as optax.ctc_loss: logits (B, T, K), logit_paddings (B, T) (1.0 = padded frame),
labels (B, N) integers, label_paddings (B, N) (1.0 = padded label, at the end), blank_id.
l' is the label with blanks around and between its U symbols (S = 2N + 1 states);
alpha and beta run in log space over the frames, padded frames leave them unchanged.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from .. import activations
from ..core import check_float
from ..gradcheck import FunctionCase
from .base import Loss, check_reduction, reduce, scale

LOG_EPSILON = -1e5          # log 0, finite as optax's: an impossible label gives a loss ~1e5


def _check(logits, logit_paddings, labels, label_paddings):
    check_float("ctc", logits)
    B, T = jnp.shape(logits)[:2] if jnp.ndim(logits) == 3 else (None, None)
    if jnp.ndim(logits) != 3 or jnp.shape(logit_paddings) != (B, T):
        raise ValueError(f"ctc: expected logits (B, T, K) and logit_paddings (B, T), got "
                         f"{jnp.shape(logits)} and {jnp.shape(logit_paddings)}")
    if jnp.ndim(labels) != 2 or jnp.shape(labels)[0] != B or jnp.shape(label_paddings) != jnp.shape(labels):
        raise ValueError(f"ctc: expected labels and label_paddings of one shape (B={B}, N), got "
                         f"{jnp.shape(labels)} and {jnp.shape(label_paddings)}")
    if not jnp.issubdtype(jnp.asarray(labels).dtype, jnp.integer):
        raise TypeError(f"ctc: expected integer labels, got dtype {jnp.asarray(labels).dtype}")


def _lattice(logits, logit_paddings, labels, label_paddings, blank_id):
    """Time-major pieces: log-probabilities, emissions y_t(l'_s) (T, B, S), skip masks, frames."""
    logp = activations.log_softmax(logits)
    labels = jnp.asarray(labels).astype(jnp.int32)
    B, N = labels.shape
    ext = jnp.full((B, 2 * N + 1), blank_id, labels.dtype).at[:, 1::2].set(labels)
    emit = jnp.take_along_axis(logp, jnp.broadcast_to(ext[:, None, :], (B, logits.shape[1], 2 * N + 1)), axis=2)
    before = jnp.pad(ext, ((0, 0), (2, 0)), constant_values=blank_id)[:, :-2]
    skip = (ext != blank_id) & (ext != before)            # s-2 -> s allowed: l'_s not blank, != l'_{s-2}
    U = jnp.sum(label_paddings < 0.5, axis=1).astype(jnp.int32)
    valid = jnp.swapaxes(logit_paddings < 0.5, 0, 1)       # (T, B)
    return logp, ext, jnp.swapaxes(emit, 0, 1), skip, U, valid


def _shift(a, k, fill=LOG_EPSILON):
    """a[:, s - k] along the states (k > 0 reads below, k < 0 above), `fill` out of range."""
    if k > 0:
        return jnp.pad(a, ((0, 0), (k, 0)), constant_values=fill)[:, :-k]
    return jnp.pad(a, ((0, 0), (0, -k)), constant_values=fill)[:, -k:]


def _lse3(a, b, c):
    m = jnp.maximum(jnp.maximum(a, b), c)
    return m + jnp.log(jnp.exp(a - m) + jnp.exp(b - m) + jnp.exp(c - m))


def _alpha_beta(emit, skip, U, valid):
    """alpha_t(s) = y_t(l'_s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) if skip_s);
    beta_t(s) = y_t(l'_s) + lse(beta_{t+1}(s), beta_{t+1}(s+1), beta_{t+1}(s+2) if skip_{s+2})."""
    S = emit.shape[-1]
    s = jnp.arange(S, dtype=jnp.int32)[None, :]
    no_skip = jnp.where(skip, 0.0, LOG_EPSILON).astype(emit.dtype)
    first = jnp.argmax(valid, axis=0).astype(jnp.int32)
    last = valid.shape[0] - 1 - jnp.argmax(valid[::-1], axis=0).astype(jnp.int32)
    start = jnp.where(s < 2, 0.0, LOG_EPSILON).astype(emit.dtype)
    end = jnp.where((s == 2 * U[:, None]) | (s == 2 * U[:, None] - 1), 0.0, LOG_EPSILON).astype(emit.dtype)
    floor = jnp.full(emit.shape[1:], LOG_EPSILON, emit.dtype)

    def forward(alpha, inputs):
        t, y, v = inputs
        step = y + _lse3(alpha, _shift(alpha, 1), _shift(alpha, 2) + no_skip)
        new = jnp.where((t == first)[:, None], y + start, step)
        new = jnp.where(v[:, None], jnp.maximum(new, 2 * LOG_EPSILON), alpha)
        return new, new

    def backward(beta, inputs):
        t, y, v = inputs
        step = y + _lse3(beta, _shift(beta, -1), _shift(beta + no_skip, -2))
        new = jnp.where((t == last)[:, None], y + end, step)
        new = jnp.where(v[:, None], jnp.maximum(new, 2 * LOG_EPSILON), beta)
        return new, new

    ts = jnp.arange(emit.shape[0], dtype=jnp.int32)
    alpha_T, alphas = lax.scan(forward, floor, (ts, emit, valid))
    _, betas = lax.scan(backward, floor, (ts, emit, valid), reverse=True)
    ends = jnp.where((s == 2 * U[:, None]) | (s == 2 * U[:, None] - 1), alpha_T, LOG_EPSILON)
    log_z = jax.scipy.special.logsumexp(ends, axis=1)
    return alphas, betas, log_z


def _per_sequence(logits, logit_paddings, labels, label_paddings, blank_id):
    _check(logits, logit_paddings, labels, label_paddings)
    logp, ext, emit, skip, U, valid = _lattice(logits, logit_paddings, labels, label_paddings, blank_id)
    return (logp, ext, emit, valid), _alpha_beta(emit, skip, U, valid)


def _ctc(logits, logit_paddings, labels, label_paddings, *, blank_id: int = 0,
         reduction: str = "mean", weights=None):
    """CTC loss: l = -log sum over alignments pi of l' of prod_t softmax(logits_t)[pi_t] = -log Z.

    Z = sum_{s in {2U-1, 2U}} alpha_{T-1}(s) (alpha in log space). Items are sequences: "none"
    gives (B,) like optax.ctc_loss, "mean" averages them (torch's "mean" also divides by U).
    A label that cannot fit its frames (U + repeats > T) gives a finite loss near 1e5.
    Derivative (with p_t = softmax(logits_t), gamma_t(s) = alpha_t(s) + beta_t(s) - y_t(l'_s)):
        dl/dlogits_t(k) = p_t(k) - sum_{s: l'_s = k} exp(gamma_t(s) + l)   (0 on padded frames).
    """
    check_reduction("ctc", reduction)
    _, (_, _, log_z) = _per_sequence(logits, logit_paddings, labels, label_paddings, blank_id)
    return reduce("ctc", -log_z, reduction, weights)


def _ctc_grad(logits, logit_paddings, labels, label_paddings, *, blank_id: int = 0,
              reduction: str = "mean", weights=None):
    check_reduction("ctc.grad", reduction)
    (logp, ext, emit, valid), (alphas, betas, log_z) = _per_sequence(
        logits, logit_paddings, labels, label_paddings, blank_id)
    gamma = jnp.swapaxes(alphas + betas - emit, 0, 1) - log_z[:, None, None]        # (B, T, S)
    posterior = jnp.exp(jnp.minimum(gamma, 0.0))
    onehot = (ext[..., None] == jnp.arange(logits.shape[-1], dtype=ext.dtype)).astype(logits.dtype)
    grad = jnp.exp(logp) - posterior @ onehot                                       # (B, T, K)
    grad = jnp.where(jnp.swapaxes(valid, 0, 1)[..., None], grad, 0)
    return scale("ctc.grad", grad, log_z.shape, reduction, weights)


ctc = Loss(_ctc, _ctc_grad, "ctc")


def _ctc_case(key, T=6, N=3, K=4):
    """Random logits; labels with a repeat, a padded label and a padded frame."""
    logits = 2 * jax.random.normal(key, (3, T, K), jnp.float64)
    labels = jnp.array([[1, 1, 2], [3, 2, 0], [2, 3, 1]])
    label_paddings = jnp.array([[0.0, 0, 0], [0, 0, 1], [0, 0, 0]])
    logit_paddings = jnp.zeros((3, T)).at[1, -2:].set(1.0)

    def f(x):
        return ctc(x, logit_paddings, labels, label_paddings)

    def hand_vjp(primals, cotangent):
        return (cotangent * ctc.grad(primals[0], logit_paddings, labels, label_paddings),)

    return f, hand_vjp, (logits,)


CASES = (FunctionCase("ctc", _ctc_case),)
