"""Naive Bayes in four variants, in log space, fitted from sufficient statistics that add up
over batches (partial_fit), with scikit-learn's formulas (tests compare the two)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._common import Learner, check_x, encode_labels, labels


def _check_hyper(name, alpha, class_prior):
    if not alpha >= 0:
        raise ValueError(f"{name}: expected alpha >= 0, got {alpha!r}")
    if class_prior is not None and (min(class_prior) < 0 or abs(sum(class_prior) - 1) > 1e-8):
        raise ValueError(f"{name}: expected class priors >= 0 summing to 1, got {tuple(class_prior)}")


def _class_log_prior(class_count, class_prior, fit_prior):
    """log P(class): given, from the class counts, or uniform."""
    k = class_count.shape[0]
    if class_prior is not None:      # its length was checked in partial_fit
        return jnp.log(jnp.asarray(class_prior, class_count.dtype))
    if fit_prior:
        return jnp.log(class_count) - jnp.log(class_count.sum())
    return jnp.full(k, -jnp.log(k), class_count.dtype)


def _start(name, params, x, y, classes, nonnegative, stats):
    """Checked x, label indices, and the statistics to add to (zeros on the first batch)."""
    x = check_x(name, x, None if params is None else params[stats[-1]].shape[1], nonnegative=nonnegative)
    if params is not None:
        known = params["classes"].tolist()
        if classes is not None and list(classes) != known:
            raise ValueError(f"{name}: expected classes={known} as in the first batch, got {list(classes)}")
        classes = known
        x = x.astype(params["class_count"].dtype)
    classes, index = encode_labels(name, y, x.shape[0], classes)
    if params is None:
        k, d = classes.size, x.shape[1]
        params = {"classes": jnp.asarray(classes), "class_count": jnp.zeros(k, x.dtype),
                  **{s: jnp.zeros((k, d), x.dtype) for s in stats}}
    return x, index, params


def _log_proba(jll):
    return jll - jax.nn.logsumexp(jll, axis=1, keepdims=True)


def _learner(name, accumulate, joint_log_likelihood, *, stats, class_prior, nonnegative=False, transform=None):
    """A Learner from `accumulate(params, x, onehot) -> params` and `jll(params, x) -> (N, K)`."""
    transform = transform or (lambda x: x)
    accumulate, joint_log_likelihood = jax.jit(accumulate), jax.jit(joint_log_likelihood)

    def partial_fit(params, x, y, *, classes=None):
        x, index, params = _start(name, params, x, y, classes, nonnegative, stats)
        if class_prior is not None and len(class_prior) != params["class_count"].shape[0]:
            raise ValueError(f"{name}: expected {params['class_count'].shape[0]} class priors, one per "
                             f"class, got {len(class_prior)}")
        onehot = jax.nn.one_hot(index, params["class_count"].shape[0], dtype=x.dtype)
        return accumulate(params, transform(x), onehot)

    def fit(x, y, *, classes=None):
        return partial_fit(None, x, y, classes=classes)

    def jll(params, x):
        x = check_x(name, x, params[stats[-1]].shape[1], nonnegative=nonnegative)
        return joint_log_likelihood(params, transform(x.astype(params["class_count"].dtype)))

    def predict(params, x):
        return labels(params, jnp.argmax(jll(params, x), axis=1))

    def predict_log_proba(params, x):
        return _log_proba(jll(params, x))

    return Learner(fit, predict, name, predict_log_proba=predict_log_proba, partial_fit=partial_fit)


def _add_counts(params, x, onehot):
    return {**params, "class_count": params["class_count"] + onehot.sum(0),
            "feature_count": params["feature_count"] + onehot.T @ x}


def _merge_moments(params, x, onehot):
    """Chan et al.'s pairwise update of per-class counts, means and sums of squared deviations."""
    n_a, mean_a, m2_a = params["class_count"], params["mean"], params["m2"]
    n_b = onehot.sum(0)
    mean_b = (onehot.T @ x) / jnp.maximum(n_b, 1)[:, None]
    m2_b = onehot.T @ (x - onehot @ mean_b) ** 2
    n = n_a + n_b
    share = jnp.where(n > 0, n_b / jnp.maximum(n, 1), 0)[:, None]
    delta = mean_b - mean_a
    return {**params, "class_count": n, "mean": mean_a + delta * share,
            "m2": m2_a + m2_b + delta ** 2 * n_a[:, None] * share}


def gaussian_nb(var_smoothing: float = 1e-9, priors: tuple | None = None) -> Learner:
    """Gaussian naive Bayes: log P(k | x) = log π_k − ½ Σ_j [log 2π σ²_kj + (x_j − μ_kj)² / σ²_kj] − log Z.

    σ²_kj = the class's variance + var_smoothing × the largest variance of a feature over all
    the data (scikit-learn's floor); Z by logsumexp. π from the class counts, or `priors`.
    Shapes: x (N, d), y (N,); params class_count (K,), mean (K, d), m2 (K, d) (sums of squared
    deviations), classes (K,). partial_fit merges batches exactly (Chan et al.'s update).
    """
    name = "gaussian_nb"
    _check_hyper(name, 0.0, priors)

    def joint_log_likelihood(params, x):
        n, mean, m2 = params["class_count"], params["mean"], params["m2"]
        grand = (n @ mean) / n.sum()
        total_var = (m2.sum(0) + n @ (mean - grand) ** 2) / n.sum()
        var = m2 / jnp.maximum(n, 1)[:, None] + var_smoothing * total_var.max()
        log_prior = _class_log_prior(n, priors, True)
        spread = ((x[:, None, :] - mean) ** 2 / var).sum(-1)              # (N, K)
        return log_prior - 0.5 * jnp.log(2 * jnp.pi * var).sum(1) - 0.5 * spread

    return _learner(name, _merge_moments, joint_log_likelihood, stats=("mean", "m2"), class_prior=priors)


def _discrete(name, alpha, fit_prior, class_prior, feature_log_prob, *, nonnegative, transform=None,
              score=None):
    """Multinomial, Bernoulli and complement NB: counts in, log π_k + x · log θ_k out."""
    _check_hyper(name, alpha, class_prior)

    def joint_log_likelihood(params, x):
        log_theta = feature_log_prob(params)
        if score is not None:
            return score(params, x, log_theta)
        return x @ log_theta.T + _class_log_prior(params["class_count"], class_prior, fit_prior)

    return _learner(name, _add_counts, joint_log_likelihood, stats=("feature_count",),
                    class_prior=class_prior, nonnegative=nonnegative, transform=transform)


def multinomial_nb(alpha: float = 1.0, fit_prior: bool = True, class_prior: tuple | None = None) -> Learner:
    """Multinomial naive Bayes on counts: log P(k | x) = log π_k + Σ_j x_j log θ_kj − log Z,
    θ_kj = (N_kj + α) / Σ_j (N_kj + α)  (N_kj = the sum of feature j over class k).

    Shapes: x (N, d) non-negative counts, y (N,); params class_count (K,), feature_count (K, d).
    """
    def feature_log_prob(params):
        smoothed = params["feature_count"] + alpha
        return jnp.log(smoothed) - jnp.log(smoothed.sum(1, keepdims=True))
    return _discrete("multinomial_nb", alpha, fit_prior, class_prior, feature_log_prob, nonnegative=True)


def _bernoulli_score(fit_prior, class_prior, params, x, log_theta):
    log_not = jnp.log1p(-jnp.exp(log_theta))                            # log(1 − θ)
    return (x @ (log_theta - log_not).T + log_not.sum(1)
            + _class_log_prior(params["class_count"], class_prior, fit_prior))


def bernoulli_nb(alpha: float = 1.0, binarize: float | None = 0.0, fit_prior: bool = True,
                 class_prior: tuple | None = None) -> Learner:
    """Bernoulli naive Bayes: b = [x > binarize], log P(k | x) = log π_k + Σ_j [b_j log θ_kj
    + (1 − b_j) log(1 − θ_kj)] − log Z, θ_kj = (N_kj + α) / (N_k + 2α).

    Shapes: x (N, d) (binarize=None: already 0/1), y (N,); params class_count (K,), feature_count (K, d).
    """
    def feature_log_prob(params):
        return (jnp.log(params["feature_count"] + alpha)
                - jnp.log(params["class_count"] + 2 * alpha)[:, None])
    transform = None if binarize is None else (lambda x: (x > binarize).astype(x.dtype))
    score = functools.partial(_bernoulli_score, fit_prior, class_prior)
    return _discrete("bernoulli_nb", alpha, fit_prior, class_prior, feature_log_prob, nonnegative=False,
                     transform=transform, score=score)


def complement_nb(alpha: float = 1.0, norm: bool = False, fit_prior: bool = True,
                  class_prior: tuple | None = None) -> Learner:
    """Complement naive Bayes (Rennie et al. 2003): score_k(x) = Σ_j x_j w_kj, predict the largest,
    w_kj = −log θ̃_kj (norm=False) or log θ̃_kj / Σ_j log θ̃_kj (norm=True), θ̃_kj = (Σ_c N_cj − N_kj + α)
    / Σ_j (Σ_c N_cj − N_kj + α), the feature's share in every class but k. log P = score − log Z.

    Shapes: x (N, d) non-negative counts, y (N,); params class_count (K,), feature_count (K, d).
    The priors only matter with one class (as in scikit-learn), which fit rejects.
    """
    def feature_log_prob(params):
        counts = params["feature_count"]
        complement = counts.sum(0) + alpha - counts
        logged = jnp.log(complement / complement.sum(1, keepdims=True))
        return logged / logged.sum(1, keepdims=True) if norm else -logged
    return _discrete("complement_nb", alpha, fit_prior, class_prior, feature_log_prob, nonnegative=True,
                     score=lambda params, x, log_theta: x @ log_theta.T)
