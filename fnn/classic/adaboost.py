"""AdaBoost with decision stumps: every feature and threshold searched at once, rounds in a lax.scan."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ._common import Learner, check_x, encode_labels, labels


def _sorted_data(x, index):
    """Per-feature sort order (d, N), sorted values, labels in that order, and which positions
    are thresholds (a value strictly below the next; the last position means "no split")."""
    order = jnp.argsort(x.T, axis=1)
    xs = jnp.take_along_axis(x.T, order, axis=1)
    valid = jnp.concatenate([xs[:, :-1] < xs[:, 1:], jnp.ones((x.shape[1], 1), bool)], axis=1)
    return order, xs, index[order], valid


def _cumsum(a, block=64):
    """Cumulative sum along the last axis as block-triangular matmuls (XLA:CPU's cumsum is slower)."""
    n = a.shape[-1]
    a = jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, -n % block)]).reshape(*a.shape[:-1], -1, block)
    within = jnp.matmul(a, jnp.triu(jnp.ones((block, block), a.dtype)), precision="highest")  # no TF32
    offsets = jnp.cumsum(within[..., -1], axis=-1) - within[..., -1]
    return (within + offsets[..., None]).reshape(*a.shape[:-2], -1)[..., :n]


def _split_scores(w, index, data, k):
    """Correctly classified weight (d, N) of the best stump splitting after each sorted position.

    left_c = Σ_{i ≤ p} w_i [y_i = c] by cumulative sums; score = max_c left_c + max_c right_c.
    Two classes sum signed weights s = w y (y = ±1): max_c left_c = (Σ_left w + |Σ_left s|) / 2.
    """
    order, _, sorted_labels, valid = data
    if k == 2:
        left = _cumsum(jnp.where(index == 1, w, -w)[order])
        score = (w.sum() + jnp.abs(left) + jnp.abs(left[:, -1:] - left)) / 2
    else:                                   # one class at a time: memory (d, N), not (d, K, N)
        ws = w[order]

        def one_class(best, c):
            left = _cumsum(jnp.where(sorted_labels == c, ws, 0))
            return (jnp.maximum(best[0], left), jnp.maximum(best[1], left[:, -1:] - left)), None
        zeros = jnp.zeros_like(ws)
        (best_left, best_right), _ = jax.lax.scan(one_class, (zeros, zeros), jnp.arange(k, dtype=jnp.int32))
        score = best_left + best_right
    return jnp.where(valid, score, -1)


def _best_stump(w, x, index, data, k):
    """Feature, threshold and the class index on each side of the lowest-error stump (first on ties)."""
    _, xs, _, _ = data
    n = x.shape[0]
    scores = _split_scores(w, index, data, k)
    feature = jnp.argmax(scores.max(1))                 # two stages: XLA's argmax over all is slow
    position = jnp.argmax(scores[feature])
    split = position < n - 1
    below, above = xs[feature, position], xs[feature, jnp.minimum(position + 1, n - 1)]
    threshold = jnp.where(split, (below + above) / 2, jnp.inf)
    go_left = x[:, feature] <= threshold
    votes = jax.nn.one_hot(index, k, dtype=w.dtype) * w[:, None]
    left = jnp.argmax(jnp.where(go_left[:, None], votes, 0).sum(0)).astype(jnp.int32)
    right = jnp.argmax(jnp.where(go_left[:, None], 0, votes).sum(0)).astype(jnp.int32)
    return feature.astype(jnp.int32), threshold, left, jnp.where(split, right, left)


def _stump_predict(params, x):
    """Class index (N, T) each stump gives each sample."""
    go_left = x[:, params["feature"]] <= params["threshold"]
    return jnp.where(go_left, params["left"], params["right"])


def adaboost(n_estimators: int = 50, learning_rate: float = 1.0) -> Learner:
    """AdaBoost with decision stumps; F(x) = Σ_t α_t h_t(x), predict sign F or argmax_c F_c.

    Each round fits the stump h_t with the least weighted error ε = Σ_i w_i [h(x_i) ≠ y_i] / Σ w.
    Two classes (y = ±1): α = η ½ ln((1 − ε)/ε), w_i ← w_i exp(−α y_i h(x_i)), renormalised.
    K > 2 classes (SAMME): α = η (ln((1 − ε)/ε) + ln(K − 1)), w_i ← w_i exp(α [h(x_i) ≠ y_i]).
    As scikit-learn: ε = 0 gives α = 1 and ends boosting; ε ≥ 1 − 1/K ends it with α = 0.
    Shapes: x (N, d), y (N,); params feature, threshold, left, right (class index on each side),
    alpha, error: (T,) each; used (d,): the features some stump splits on.
    decision_function: (N,) for two classes (F of the larger class), else (N, K).
    staged_predict(params, x) -> (T, N): the prediction after each round, for error-vs-rounds plots.
    """
    name = "adaboost"
    if not isinstance(n_estimators, int) or n_estimators < 1 or not learning_rate > 0:
        raise ValueError(f"{name}: expected an int n_estimators >= 1 and learning_rate > 0, "
                         f"got n_estimators={n_estimators!r}, learning_rate={learning_rate!r}")

    def weight(eps, k):
        eps = jnp.clip(eps, jnp.finfo(eps.dtype).tiny, 1 - 1 / k)      # the ends are replaced below
        ratio = jnp.log1p(-eps) - jnp.log(eps)
        return learning_rate * (0.5 * ratio if k == 2 else ratio + math.log(k - 1))

    def boost_round(x, index, data, k, carry, _):
        w, done = carry
        feature, threshold, left, right = _best_stump(w, x, index, data, k)
        miss = jnp.where(x[:, feature] <= threshold, left, right) != index
        eps = jnp.where(miss, w, 0).sum() / w.sum()
        perfect, hopeless = eps <= 0, eps >= 1 - 1 / k
        alpha = jnp.where(done | hopeless, 0.0, jnp.where(perfect, 1.0, weight(eps, k))).astype(w.dtype)
        sign = jnp.where(miss, 1.0, -1.0 if k == 2 else 0.0).astype(w.dtype)
        w = w * jnp.exp(alpha * sign)
        stump = {"feature": feature, "threshold": threshold, "left": left, "right": right,
                 "alpha": alpha, "error": eps}
        return (w / w.sum(), done | perfect | hopeless), stump

    @functools.partial(jax.jit, static_argnums=2)
    def boost(x, index, k):
        data = _sorted_data(x, index)
        w = jnp.full(x.shape[0], 1.0 / x.shape[0], x.dtype)
        step = lambda carry, t: boost_round(x, index, data, k, carry, t)
        return jax.lax.scan(step, (w, jnp.asarray(False)), None, length=n_estimators)[1]

    def fit(x, y, *, classes=None):
        x = check_x(name, x)
        classes, index = encode_labels(name, y, x.shape[0], classes)
        stumps = boost(x, index, classes.size)
        used = jnp.zeros(x.shape[1], bool).at[stumps["feature"]].max(stumps["alpha"] > 0)
        return {**stumps, "classes": jnp.asarray(classes), "used": used}

    @jax.jit
    def weighted_votes(params, x):
        k = params["classes"].shape[0]
        return jax.nn.one_hot(_stump_predict(params, x), k, dtype=x.dtype) * params["alpha"][:, None]

    def votes(params, x):
        """(N, T, K) α-weighted one-hot votes."""
        x = check_x(name, x, params["used"].shape[0]).astype(params["threshold"].dtype)
        return weighted_votes(params, x)

    def decision_function(params, x):
        f = votes(params, x).sum(1)
        return f[:, 1] - f[:, 0] if f.shape[1] == 2 else f

    def predict(params, x):
        return labels(params, jnp.argmax(votes(params, x).sum(1), axis=1))

    def staged_predict(params, x):
        return labels(params, jnp.argmax(jnp.cumsum(votes(params, x), axis=1), axis=2).T)

    return Learner(fit, predict, name, decision_function=decision_function, staged_predict=staged_predict)
