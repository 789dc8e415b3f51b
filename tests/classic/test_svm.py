"""linear_svm against scikit-learn's LinearSVC (a test-only oracle; liblinear's dual coordinate
descent, the same solver) on bundled data in float64: the same optimum, so the same weights to
the solvers' tolerance and test accuracy within 0.5 points; dense and sparse rows alike."""
import jax
import numpy as np
import pytest

from fnn import classic
from fnn.classic.text import SparseRows

datasets = pytest.importorskip("sklearn.datasets")
sk_svm = pytest.importorskip("sklearn.svm")
model_selection = pytest.importorskip("sklearn.model_selection")


def _split(name, scale):
    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return model_selection.train_test_split(x / scale, y, test_size=0.3, random_state=0)


DIGITS = _split("digits", 16.0)                       # pixels 0..16 -> [0, 1]
CANCER = _split("breast_cancer", 1000.0)              # features up to ~4000 -> a few units


def _sparse(x):
    """Dense x as SparseRows holding every column (zeros included: they are ordinary values)."""
    return SparseRows(np.tile(np.arange(x.shape[1], dtype=np.int32), (x.shape[0], 1)), x, x.shape[1])


@pytest.mark.parametrize(("data", "kwargs"), [
    ("digits", {"C": 0.1}),                           # ten one-vs-rest units, squared hinge
    ("cancer", {"C": 0.1, "loss": "hinge"}),          # one unit, hinge
])
def test_agrees_with_linear_svc(data, kwargs):
    x_train, x_test, y_train, y_test = DIGITS if data == "digits" else CANCER
    learner = classic.linear_svm(**kwargs)
    params = learner.fit(x_train, y_train)
    oracle = sk_svm.LinearSVC(dual=True, max_iter=5000, **kwargs).fit(x_train, y_train)
    ours = float((np.asarray(learner.predict(params, x_test)) == y_test).mean())
    assert abs(ours - oracle.score(x_test, y_test)) <= 0.005, (ours, oracle.score(x_test, y_test))
    W = np.asarray(params["W"]).T
    assert np.linalg.norm(W - oracle.coef_) <= 2e-2 * np.linalg.norm(oracle.coef_)
    np.testing.assert_allclose(params["b"], oracle.intercept_, atol=2e-2 * np.abs(oracle.intercept_).max())
    scores = np.asarray(learner.decision_function(params, x_test))
    assert scores.shape == oracle.decision_function(x_test).shape
    assert (np.asarray(params["epochs"]) < 5000).all()       # converged, not stopped by max_iter


def test_squared_hinge_weights_match_closely():
    """The squared-hinge dual is strictly convex: both solvers land on one point (tol 1e-4)."""
    x_train, _, y_train, _ = CANCER
    params = classic.linear_svm(C=0.3).fit(x_train, y_train)
    oracle = sk_svm.LinearSVC(dual=True, C=0.3, tol=1e-6, max_iter=20000).fit(x_train, y_train)
    np.testing.assert_allclose(np.asarray(params["W"])[:, 0], oracle.coef_[0], rtol=0,
                               atol=1e-3 * np.abs(oracle.coef_).max())


def test_sparse_rows_give_the_dense_fit():
    x_train, x_test, y_train, _ = CANCER
    learner = classic.linear_svm(C=0.3)
    dense, sparse = learner.fit(x_train, y_train), learner.fit(_sparse(x_train), y_train)
    for name in ("W", "b"):
        np.testing.assert_allclose(sparse[name], dense[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(learner.decision_function(sparse, _sparse(x_test)),
                               learner.decision_function(dense, x_test), rtol=1e-9, atol=1e-12)


def test_separable_points_get_the_margin():
    """Two points ±1 on a line, no intercept feature: w = argmin ½w² + 2C(1 − w)² = 4C / (1 + 4C)."""
    x, y = np.array([[1.0], [-1.0]]), np.array([1, 0])
    params = classic.linear_svm(C=1.0, intercept_scaling=0.0).fit(x, y)
    np.testing.assert_allclose(params["W"], [[0.8]], rtol=1e-4)      # the stopping test leaves ~2e-5
    np.testing.assert_array_equal(classic.linear_svm().predict(params, x), y)


def test_float32_stays_float32_and_predict_jits():
    x_train, x_test, y_train, _ = CANCER
    learner = classic.linear_svm(C=0.3)
    params = learner.fit(x_train.astype(np.float32), y_train)
    assert params["W"].dtype == np.float32 and params["W"].shape == (30, 1)
    eager = learner.predict(params, x_test.astype(np.float32))
    np.testing.assert_array_equal(jax.jit(learner.predict)(params, x_test.astype(np.float32)), eager)


def test_bad_hyperparameters_and_inputs():
    with pytest.raises(ValueError, match="linear_svm: expected loss 'squared_hinge' or 'hinge', got 'log'"):
        classic.linear_svm(loss="log")
    with pytest.raises(ValueError, match=r"linear_svm: expected C > 0, .* got C=0"):
        classic.linear_svm(C=0)
    params = classic.linear_svm(C=0.3).fit(*CANCER[::2])
    with pytest.raises(ValueError, match="linear_svm: expected x with 30 features as in fit, got 4"):
        classic.linear_svm().predict(params, _sparse(np.ones((2, 4))))
