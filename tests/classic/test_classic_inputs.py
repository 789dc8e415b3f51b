"""Bad input gets one sentence naming the learner; predict works under jax.jit; fnn.classic's door."""

import jax
import numpy as np
import pytest

from fnn import classic

X = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 0.0], [3.0, 1.0]])
Y = np.array([0, 1, 0, 1])
LEARNERS = {"perceptron": classic.perceptron(), "gaussian_nb": classic.gaussian_nb(),
            "multinomial_nb": classic.multinomial_nb(), "bernoulli_nb": classic.bernoulli_nb(),
            "complement_nb": classic.complement_nb(), "adaboost": classic.adaboost(3),
            "linear_svm": classic.linear_svm()}
NAMES = sorted(LEARNERS)


@pytest.mark.parametrize("name", NAMES)
def test_one_class_only(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected at least two classes in y, got only \[1\]$"):
        LEARNERS[name].fit(X, np.ones(4, int))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_features(name, bad):
    x = X.copy()
    x[2, 1] = bad
    with pytest.raises(ValueError, match=rf"^{name}: expected finite features, got NaN or infinite"):
        LEARNERS[name].fit(x, Y)
    params = LEARNERS[name].fit(X, Y)
    with pytest.raises(ValueError, match=rf"^{name}: expected finite features"):
        LEARNERS[name].predict(params, x)


@pytest.mark.parametrize("name", ["multinomial_nb", "complement_nb"])
def test_negative_counts(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected non-negative counts in x, got minimum -1.0$"):
        LEARNERS[name].fit(X - 1, Y)


@pytest.mark.parametrize("name", NAMES)
def test_labels_outside_the_binary_pair(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected labels in \[-1, 1\], got also \[0\]$"):
        LEARNERS[name].fit(X, Y, classes=[-1, 1])


@pytest.mark.parametrize("name", NAMES)
def test_predict_with_another_feature_count(name):
    params = LEARNERS[name].fit(X, Y)
    with pytest.raises(ValueError, match=rf"^{name}: expected x with 2 features as in fit, got 3$"):
        LEARNERS[name].predict(params, np.ones((2, 3)))


@pytest.mark.parametrize("name", NAMES)
def test_shapes_of_x_and_y(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected x of shape \(N, d\)"):
        LEARNERS[name].fit(X[0], Y)
    with pytest.raises(ValueError, match=rf"^{name}: expected y of shape \(4,\) to match x, got shape \(3,\)$"):
        LEARNERS[name].fit(X, Y[:3])


@pytest.mark.parametrize("name", NAMES)
def test_string_labels(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected numeric labels \(JAX arrays hold no strings\)"):
        LEARNERS[name].fit(X, np.array(["a", "b", "a", "b"]))


@pytest.mark.parametrize("name", NAMES)
def test_predict_under_jit_with_labels_kept(name):
    y = np.array([3, 7, 3, 7])
    params = LEARNERS[name].fit(X, y)
    eager = np.asarray(LEARNERS[name].predict(params, X))
    assert set(eager) <= {3, 7}
    np.testing.assert_array_equal(jax.jit(LEARNERS[name].predict)(params, X), eager)


def test_hyperparameters_are_checked_in_the_factory():
    with pytest.raises(ValueError, match="perceptron: expected learning_rate > 0"):
        classic.perceptron(learning_rate=0.0)
    with pytest.raises(ValueError, match="adaboost: expected an int n_estimators >= 1"):
        classic.adaboost(0)
    with pytest.raises(ValueError, match="multinomial_nb: expected alpha >= 0, got -1"):
        classic.multinomial_nb(alpha=-1)
    with pytest.raises(ValueError, match=r"gaussian_nb: expected class priors >= 0 summing to 1"):
        classic.gaussian_nb(priors=(0.5, 0.6))


def test_public_door():
    assert sorted(classic.__all__) == ["Learner", "adaboost", "bernoulli_nb", "complement_nb",
                                       "gaussian_nb", "linear_svm", "multinomial_nb", "perceptron", "text"]
    for name in set(classic.__all__) - {"Learner", "text"}:
        assert isinstance(getattr(classic, name)(), classic.Learner)
