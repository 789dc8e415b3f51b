"""Classic learners as records of pure functions: `fit(x, y) -> params`, `predict(params, x)`.

Perceptron (Rosenblatt), naive Bayes (Gaussian, multinomial, Bernoulli, complement), AdaBoost
with decision stumps and a linear SVM (dual coordinate descent), jit-compiled; `text` turns
documents into word counts or tf-idf. Tests compare them with scikit-learn.
"""
from . import text as text
from ._common import Learner as Learner
from .adaboost import adaboost as adaboost
from .naive_bayes import bernoulli_nb as bernoulli_nb
from .naive_bayes import complement_nb as complement_nb
from .naive_bayes import gaussian_nb as gaussian_nb
from .naive_bayes import multinomial_nb as multinomial_nb
from .perceptron import perceptron as perceptron
from .svm import linear_svm as linear_svm

__all__ = ["Learner", "adaboost", "bernoulli_nb", "complement_nb", "gaussian_nb", "linear_svm", "multinomial_nb",
           "perceptron", "text"]
