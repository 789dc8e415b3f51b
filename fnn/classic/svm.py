"""Linear support-vector classifier by dual coordinate descent (Hsieh et al. 2008), liblinear's
solver behind scikit-learn's LinearSVC, one-vs-rest, the whole fit one jitted call."""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._common import Learner, check_x, encode_labels, labels
from .text import SparseRows


class _Rows(NamedTuple):
    """How the solver reads the samples: dense rows of x (N, d), or (indices, values) of SparseRows."""
    data: object
    n_features: int
    dot: object          # dot(w, row) -> w . x_i
    axpy: object         # axpy(w, a, row) -> w + a x_i


def _dense_dot(w, row):
    return w @ row


def _dense_axpy(w, a, row):
    return w + a * row


def _sparse_dot(w, row):
    return w[row[0]] @ row[1]


def _sparse_axpy(w, a, row):
    return w.at[row[0]].add(a * row[1])


def _rows(name, x, n_features=None) -> tuple[_Rows, jax.Array]:
    """The samples as _Rows and their squared norms (N,), for dense x (N, d) or SparseRows."""
    if isinstance(x, SparseRows):
        if n_features is not None and x.n_features != n_features:
            raise ValueError(f"{name}: expected x with {n_features} features as in fit, got {x.n_features}")
        values = check_x(name, x.values)
        rows = _Rows((jnp.asarray(x.indices, jnp.int32), values), x.n_features, _sparse_dot, _sparse_axpy)
        return rows, (values * values).sum(1)      # a row names each column at most once
    x = check_x(name, x, n_features)
    return _Rows(x, x.shape[1], _dense_dot, _dense_axpy), (x * x).sum(1)


def _sweep(rows, y, qd, diag, upper, scale, carry, order):
    """One pass of coordinate steps over the samples in `order`; the new carry and the gap between
    the largest and smallest projected gradient seen (liblinear's stopping test). Each α_i is
    visited once, so the pass scans over the permuted samples with their α_i (no scatter)."""
    def step(wb, sample):
        w, b = wb
        row, y_i, qd_i, alpha_i = sample
        g = y_i * (rows.dot(w, row) + b * scale) - 1 + diag * alpha_i
        pg = jnp.where(alpha_i <= 0, jnp.minimum(g, 0), jnp.where(alpha_i >= upper, jnp.maximum(g, 0), g))
        new = jnp.where(jnp.abs(pg) > 1e-12, jnp.clip(alpha_i - g / qd_i, 0, upper), alpha_i)
        step_y = (new - alpha_i) * y_i                                    # (α_new − α_old) y_i
        return (rows.axpy(w, step_y, row), b + step_y * scale), (new, pg)
    w, b, alpha = carry
    samples = (jax.tree.map(lambda a: a[order], rows.data), y[order], qd[order], alpha[order])
    (w, b), (new, pg) = jax.lax.scan(step, (w, b), samples)
    return (w, b, alpha.at[order].set(new)), pg.max() - pg.min()


def _solve(rows, sq, y, key, *, c, hinge, scale, tol, max_iter):
    """Dual CD for one binary problem, y in {-1, +1}: min_α ½ αᵀ(Q + D)α − Σα over 0 ≤ α_i ≤ U,
    Q_ij = y_i y_j [x_i, s]·[x_j, s]; squared hinge: D = I / 2C, U = ∞; hinge: D = 0, U = C."""
    diag, upper = (0.0, c) if hinge else (0.5 / c, jnp.inf)
    sweep = functools.partial(_sweep, rows, y, sq + scale ** 2 + diag, diag, upper, scale)

    def epoch(state):
        carry, _, count = state
        carry, gap = sweep(carry, jax.random.permutation(jax.random.fold_in(key, count), y.shape[0]))
        return carry, gap, count + 1

    start = ((jnp.zeros(rows.n_features, y.dtype), jnp.zeros((), y.dtype), jnp.zeros_like(y)),
             jnp.asarray(jnp.inf, y.dtype), jnp.zeros((), jnp.int32))
    (w, b, _), _, count = jax.lax.while_loop(lambda s: (s[1] > tol) & (s[2] < max_iter), epoch, start)
    return w, b, count


@functools.partial(jax.jit, static_argnames=("n_features", "dot", "axpy", "c", "hinge", "scale", "tol",
                                             "max_iter"))
def _fit_all(data, sq, targets, key, *, n_features, dot, axpy, **options):
    """One-vs-rest: `_solve` for every row of targets (U, N) at once; W (d, U), b (U,), epochs (U,)."""
    rows = _Rows(data, n_features, dot, axpy)
    w, b, count = jax.vmap(lambda y: _solve(rows, sq, y, key, **options))(targets)
    return w.T, b, count


def linear_svm(C: float = 1.0, loss: str = "squared_hinge", tol: float = 1e-4, max_iter: int = 1000,
               intercept_scaling: float = 1.0) -> Learner:
    """Linear SVM: min_w ½|w|² + C Σ_i ℓ(y_i (x_i·w + b)), ℓ(m) = max(0, 1 − m)² ("squared_hinge")
    or max(0, 1 − m) ("hinge"), solved in the dual by coordinate descent (liblinear's solver, as
    scikit-learn's LinearSVC with dual=True; b is the weight of a constant feature `intercept_scaling`,
    so it is regularised as there). Epochs visit the samples in a fresh random order until the
    projected gradients' spread falls to `tol`, at most `max_iter` epochs.

    Shapes: x (N, d) or text.SparseRows, y (N,); W (d, U), b (U,), epochs (U,): U = 1 unit ("y is the
    larger class") for two classes, else K one-vs-rest units. fit(x, y, *, classes=None, key=None).
    decision_function(params, x) = x·W + b, (N,) for two classes, (N, K) otherwise.
    """
    name = "linear_svm"
    if loss not in ("squared_hinge", "hinge"):
        raise ValueError(f"{name}: expected loss 'squared_hinge' or 'hinge', got {loss!r}")
    if not (C > 0 and tol > 0 and intercept_scaling >= 0) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"{name}: expected C > 0, tol > 0, intercept_scaling >= 0 and an int max_iter >= 1, "
                         f"got C={C!r}, tol={tol!r}, intercept_scaling={intercept_scaling!r}, "
                         f"max_iter={max_iter!r}")
    options = {"c": float(C), "hinge": loss == "hinge", "scale": float(intercept_scaling), "tol": float(tol),
               "max_iter": max_iter}

    def fit(x, y, *, classes=None, key=None):
        rows, sq = _rows(name, x)
        classes, index = encode_labels(name, y, sq.shape[0], classes)
        units = 1 if classes.size == 2 else classes.size
        targets = 2 * jax.nn.one_hot(index - int(units == 1), units, dtype=sq.dtype).T - 1   # (U, N) in ±1
        key = jax.random.PRNGKey(0) if key is None else key
        W, b, epochs = _fit_all(rows.data, sq, targets, key, n_features=rows.n_features, dot=rows.dot,
                                axpy=rows.axpy, **options)
        return {"W": W, "b": b, "epochs": epochs, "classes": jnp.asarray(classes)}

    def decision_function(params, x):
        rows, _ = _rows(name, x, params["W"].shape[0])
        return _scores(rows.data, params["W"], params["b"], dense=rows.dot is _dense_dot)

    def predict(params, x):
        z = decision_function(params, x)
        return labels(params, (z > 0).astype(jnp.int32) if z.ndim == 1 else jnp.argmax(z, axis=1))

    return Learner(fit, predict, name, decision_function=decision_function)


@functools.partial(jax.jit, static_argnames="dense")
def _scores(data, W, b, *, dense):
    z = (data.astype(W.dtype) @ W if dense else
         jnp.einsum("nl,nlu->nu", data[1].astype(W.dtype), W[data[0]])) + b
    return z[:, 0] if z.shape[1] == 1 else z
