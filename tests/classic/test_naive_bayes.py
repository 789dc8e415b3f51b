"""Naive Bayes against scikit-learn (a test-only oracle) on its bundled data sets, in float64:
identical predictions and predict_log_proba equal to 1e-6 (relative, or absolute below 1)."""
import numpy as np
import pytest

from fnn import classic

datasets = pytest.importorskip("sklearn.datasets")
sk_nb = pytest.importorskip("sklearn.naive_bayes")

DATA = {name: getattr(datasets, f"load_{name}")(return_X_y=True)
        for name in ("iris", "wine", "breast_cancer", "digits")}
# (fnn learner, scikit-learn estimator): the same keyword arguments on both sides
VARIANTS = {
    "gaussian": (classic.gaussian_nb, sk_nb.GaussianNB, {}),
    "gaussian_priors": (classic.gaussian_nb, sk_nb.GaussianNB, {"var_smoothing": 1e-6}),
    "multinomial": (classic.multinomial_nb, sk_nb.MultinomialNB, {"alpha": 0.5}),
    "multinomial_uniform": (classic.multinomial_nb, sk_nb.MultinomialNB, {"fit_prior": False}),
    "bernoulli": (classic.bernoulli_nb, sk_nb.BernoulliNB, {"alpha": 1.0}),
    "complement": (classic.complement_nb, sk_nb.ComplementNB, {}),
    "complement_norm": (classic.complement_nb, sk_nb.ComplementNB, {"norm": True, "alpha": 0.3}),
}
LEARNERS = {}   # one learner per variant, so the jitted functions compile once per data shape


def _pair(variant, x, y):
    ours, theirs, kwargs = VARIANTS[variant]
    kwargs = dict(kwargs)
    if variant == "bernoulli":
        kwargs["binarize"] = float(np.median(x))        # every data set's features are non-negative
    if variant == "gaussian_priors":
        counts = np.bincount(y)
        kwargs["priors"] = tuple(np.full(counts.size, 1 / counts.size))
    key = (variant, *sorted(kwargs.items()))
    learner = LEARNERS.setdefault(key, ours(**kwargs))
    return learner, theirs(**kwargs)


@pytest.mark.parametrize("data", sorted(DATA))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_agrees_with_sklearn(variant, data):
    x, y = DATA[data]
    learner, oracle = _pair(variant, x, y)
    params, oracle = learner.fit(x, y), oracle.fit(x, y)
    np.testing.assert_array_equal(learner.predict(params, x), oracle.predict(x))
    np.testing.assert_allclose(learner.predict_log_proba(params, x), oracle.predict_log_proba(x),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant", ["gaussian", "multinomial", "bernoulli", "complement"])
def test_partial_fit_over_batches_equals_fit(variant):
    x, y = DATA["digits"]
    learner, _ = _pair(variant, x, y)
    params = None
    for batch in np.array_split(np.arange(len(y)), 5):
        params = learner.partial_fit(params, x[batch], y[batch], classes=np.arange(10))
    whole = learner.fit(x, y)
    for name in whole:
        np.testing.assert_allclose(params[name], whole[name], rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(learner.predict_log_proba(params, x), learner.predict_log_proba(whole, x),
                               rtol=1e-8, atol=1e-8)


def test_thousands_of_features_do_not_underflow():
    """Products of 5000 probabilities underflow; their logs and logsumexp do not."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    x = rng.poisson(1.0 + y[:, None], (60, 5000)).astype(float)
    theta = np.full(5000, 1 / 5000)
    assert np.prod(theta ** x[0]) == 0.0                          # the likelihood itself underflows
    for learner in (classic.multinomial_nb(), classic.gaussian_nb(), classic.bernoulli_nb()):
        params = learner.fit(x, y)
        log_proba = np.asarray(learner.predict_log_proba(params, x))
        assert np.isfinite(log_proba).all()
        np.testing.assert_allclose(np.exp(log_proba).sum(1), 1.0, rtol=1e-12)
        np.testing.assert_array_equal(learner.predict(params, x), y)


def test_class_prior_given():
    x, y = DATA["iris"]
    ours = classic.multinomial_nb(class_prior=(0.7, 0.2, 0.1))
    oracle = sk_nb.MultinomialNB(class_prior=(0.7, 0.2, 0.1)).fit(x, y)
    np.testing.assert_allclose(ours.predict_log_proba(ours.fit(x, y), x), oracle.predict_log_proba(x), rtol=1e-9)
    with pytest.raises(ValueError, match=r"multinomial_nb: expected 3 class priors, one per class, got 2"):
        classic.multinomial_nb(class_prior=(0.5, 0.5)).fit(x, y)
