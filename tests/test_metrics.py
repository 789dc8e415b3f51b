"""fnn.metrics: edit distance, WER and PER by hand, and against an independent implementation
(the textbook full-matrix recursion, memoised) on random sequences; the classification metrics
against scikit-learn and BLEU against sacrebleu, on random inputs and edge cases."""
import functools
import math
import random
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from fnn import metrics
from fnn.metrics import edit_distance, phoneme_error_rate, wer_per, word_error_rate


def _recursive_distance(a, b) -> int:
    """Levenshtein by its definition: d(i, j) over prefixes, with the three moves."""
    @functools.cache
    def d(i, j):
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


def _oracle_wer_per(predictions, references):
    """WER/PER written out differently: all distances first, then the closest reference by sort."""
    wrong = sum(1 for k, p in predictions.items() if list(p) not in [list(r) for r in references[k]])
    errors = length = 0
    for k, p in predictions.items():
        ranked = sorted(references[k], key=lambda r: (_recursive_distance(tuple(p), tuple(r)), tuple(r)))
        errors += _recursive_distance(tuple(p), tuple(ranked[0]))
        length += len(ranked[0])
    return wrong / len(predictions), errors / length


def test_edit_distance_by_hand():
    assert edit_distance("kitten", "sitting") == 3          # k->s, e->i, +g
    assert edit_distance("flaw", "lawn") == 2               # -f, +n
    assert edit_distance((), ("AH",)) == 1
    assert edit_distance(("K", "AE", "T"), ("K", "AE", "T")) == 0
    assert edit_distance(("K", "AE", "T"), ("AE", "T", "S")) == 2
    assert edit_distance("", "") == 0


def test_wer_per_by_hand():
    references = {"a": [("AH",), ("EY",)], "the": [("DH", "AH"), ("DH", "IY")], "cat": [("K", "AE", "T")]}
    predictions = {"a": ("EY",), "the": ("DH", "EH"), "cat": ("K", "AE")}
    # "a" matches its second pronunciation; "the" is one substitution from either (ties: the
    # lexically smaller, DH AH, length 2); "cat" lacks its T
    assert word_error_rate(predictions, references) == pytest.approx(2 / 3)
    assert phoneme_error_rate(predictions, references) == pytest.approx((0 + 1 + 1) / (1 + 2 + 3))
    assert wer_per(predictions, references) == (word_error_rate(predictions, references),
                                                phoneme_error_rate(predictions, references))


def test_closest_reference_sets_the_length():
    # one edit from the long reference beats two from the short one: PER = 1 / 4, not 2 / 1
    references = {"w": [("A",), ("A", "B", "C", "D")]}
    assert phoneme_error_rate({"w": ("A", "B", "C")}, references) == pytest.approx(1 / 4)


def test_metrics_refuse_what_they_cannot_score():
    with pytest.raises(ValueError, match="no predictions"):
        word_error_rate({}, {"a": [("AH",)]})
    with pytest.raises(ValueError, match="no reference.*'b'"):
        phoneme_error_rate({"b": ("B",)}, {"a": [("AH",)]})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=8), st.lists(st.sampled_from("abc"), max_size=8))
def test_edit_distance_matches_the_recursion(a, b):
    d = edit_distance(a, b)
    assert d == _recursive_distance(tuple(a), tuple(b))
    assert d == edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


def test_wer_per_match_the_oracle_on_random_lexicons():
    rng = random.Random(0)
    symbols = ["AH", "B", "K", "T", "IY"]
    seq = lambda: tuple(rng.choice(symbols) for _ in range(rng.randint(1, 6)))   # noqa: E731
    references = {f"w{i}": [seq() for _ in range(rng.randint(1, 3))] for i in range(60)}
    predictions = {w: (rng.choice(refs) if rng.random() < 0.3 else seq()) for w, refs in references.items()}
    wer, per = wer_per(predictions, references)
    oracle_wer, oracle_per = _oracle_wer_per(predictions, references)
    assert wer == pytest.approx(oracle_wer) and per == pytest.approx(oracle_per)
    assert 0 < wer < 1 and per > 0


# ------------------------------------------------------------ classification: equal to scikit-learn

C = 5          # classes


def _classification_inputs(kind: str):
    """(labels, predictions, logits) of 60 examples, int64 ids and float64 logits (N, C)."""
    rng = np.random.default_rng(len(kind))
    labels, predictions, logits = rng.integers(0, C, 60), rng.integers(0, C, 60), rng.normal(size=(60, C))
    if kind == "a class that never occurs":              # class 3 neither true nor predicted, 4 never predicted
        labels, predictions = np.where(labels == 3, 0, labels), np.where(predictions >= 3, 1, predictions)
    elif kind == "all one class":
        labels = np.full(60, 2)
    elif kind == "tied logits":                          # the top-k order decides ties by class id
        logits = rng.integers(0, 2, (60, C)).astype(np.float64)
    elif kind == "all right":
        predictions, logits = labels, logits + 10 * np.eye(C)[labels]
    return labels, predictions, logits


INPUTS = ["random", "a class that never occurs", "all one class", "tied logits", "all right"]


def _sk_prf(average):
    return lambda y, p, s: skm.precision_recall_fscore_support(y, p, labels=range(C), average=average,
                                                               zero_division=0)[:3]


def _sk_top_k(k):
    def top_k(y, p, s):
        with warnings.catch_warnings():                  # k = C: "will result in a perfect score"
            warnings.simplefilter("ignore")
            return skm.top_k_accuracy_score(y, s, k=k, labels=range(C))
    return top_k


# (name, fnn.metrics call, scikit-learn call), both on (labels, predictions, logits)
CLASSIFICATION = [
    ("accuracy of logits", lambda y, p, s: metrics.accuracy(s, y), lambda y, p, s: skm.accuracy_score(y, s.argmax(1))),
    ("accuracy of ids", lambda y, p, s: metrics.accuracy(p, y), lambda y, p, s: skm.accuracy_score(y, p)),
    *[(f"top_k_accuracy k={k}", lambda y, p, s, k=k: metrics.top_k_accuracy(s, y, k), _sk_top_k(k))
      for k in (1, 2, C)],
    ("confusion_matrix", lambda y, p, s: metrics.confusion_matrix(y, p, C),
     lambda y, p, s: skm.confusion_matrix(y, p, labels=range(C))),
    *[(f"precision_recall_f1 average={a}", lambda y, p, s, a=a: metrics.precision_recall_f1(y, p, C, a)[:3],
       _sk_prf(a)) for a in metrics.AVERAGES],
]


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize("name, ours, theirs", CLASSIFICATION, ids=[c[0] for c in CLASSIFICATION])
def test_classification_metrics_equal_scikit_learn(name, ours, theirs, kind):
    y, p, s = _classification_inputs(kind)
    got, want = ours(y, p, s), theirs(y, p, s)
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=1e-12, atol=1e-15)


def test_support_counts_each_class_and_matches_scikit_learn():
    y, p, _ = _classification_inputs("a class that never occurs")
    want = skm.precision_recall_fscore_support(y, p, labels=range(C), zero_division=0)[3]
    for average in metrics.AVERAGES:
        support = metrics.precision_recall_f1(y, p, C, average).support
        assert support.tolist() == want.tolist()
        assert support[3] == 0


def test_precision_recall_f1_by_hand():
    # true 0 0 1 1 2, predicted 0 1 1 1 0: class 0 TP 1 of 2 predicted, 1 of 2 true; class 1: TP 2 of 3 / of 2;
    # class 2 never predicted: precision 0 by the zero-division convention, recall 0, F1 0
    result = metrics.precision_recall_f1(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3)
    np.testing.assert_allclose(result.precision, [1 / 2, 2 / 3, 0])
    np.testing.assert_allclose(result.recall, [1 / 2, 1, 0])
    np.testing.assert_allclose(result.f1, [1 / 2, 4 / 5, 0])
    assert metrics.confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3).tolist() == \
        [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def _roc_inputs(kind: str):
    rng = np.random.default_rng(len(kind))
    labels, scores = rng.integers(0, 2, 80), rng.normal(size=80)
    if kind == "ties":
        scores = np.round(scores)                        # a handful of values, shared by both classes
    elif kind == "separable":
        scores = labels + rng.uniform(0, 0.5, 80)
    elif kind == "reversed":
        scores = -labels.astype(np.float64)
    elif kind == "one positive":
        labels = np.eye(80, dtype=np.int64)[7]
    return labels, scores


@pytest.mark.parametrize("kind", ["random", "ties", "separable", "reversed", "one positive"])
def test_roc_auc_equals_scikit_learn(kind):
    labels, scores = _roc_inputs(kind)
    want = skm.roc_auc_score(labels, scores)
    assert float(metrics.roc_auc(labels, scores)) == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert float(metrics.roc_auc(labels == 1, scores.astype(np.float32))) == pytest.approx(want, rel=1e-6)


def test_classification_metrics_jit_and_keep_the_default_float():
    y, p, s = _classification_inputs("random")
    b, scores = _roc_inputs("ties")

    def every(y, p, s, b, scores):
        return (metrics.accuracy(s, y), metrics.top_k_accuracy(s, y, 2), metrics.confusion_matrix(y, p, C),
                metrics.precision_recall_f1(y, p, C, "macro"), metrics.roc_auc(b, scores))
    eager, jitted = every(y, p, s, b, scores), jax.jit(every)(y, p, s, b, scores)
    for e, j in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
        np.testing.assert_allclose(e, j, rtol=1e-12)
        assert e.dtype == j.dtype
    assert eager[0].dtype == jnp.float64 and eager[2].dtype == jnp.int32    # conftest turns x64 on
    one_class = jax.jit(metrics.roc_auc)(np.zeros(4, np.int32), np.arange(4.0))
    assert np.isnan(one_class)                           # not checkable under jit: nan, not an error


@pytest.mark.parametrize("call, error, message", [
    (lambda: metrics.roc_auc(np.ones(5, np.int32), np.arange(5.0)), ValueError,
     r"roc_auc: labels01 hold only one class \(1\); the ROC AUC needs both"),
    (lambda: metrics.roc_auc(np.array([0, 1, 2]), np.arange(3.0)), ValueError,
     r"roc_auc: labels01 must lie in \[0, 2\), got ids from 0 to 2"),
    (lambda: metrics.top_k_accuracy(np.zeros((4, 3)), np.zeros(4, np.int32), 4), ValueError,
     r"top_k_accuracy: k must be an int in \[1, 3\] \(the classes\), got 4"),
    (lambda: metrics.accuracy(np.zeros((4, 3)), np.array([0, 1, 2, 3])), ValueError,
     r"accuracy: labels must lie in \[0, 3\), got ids from 0 to 3"),
    (lambda: metrics.accuracy(np.zeros(4, np.int32), np.zeros(5, np.int32)), ValueError,
     r"accuracy: predictions and labels differ in length: 4 vs 5"),
    (lambda: metrics.confusion_matrix(np.zeros(4), np.zeros(4, np.int32), 3), TypeError,
     r"confusion_matrix: expected labels as a 1-d array of integer class ids, got float64 of shape \(4,\)"),
    (lambda: metrics.precision_recall_f1(np.zeros(4, np.int32), np.zeros(4, np.int32), 3, "mean"), ValueError,
     r"precision_recall_f1: average must be one of \(None, 'macro', 'micro', 'weighted'\), got 'mean'"),
    (lambda: metrics.bleu([["a"]], [["a"]]), TypeError, r"bleu: expected hypothesis 0 as a token list"),
    (lambda: metrics.bleu([["a"], ["b"]], [[["a"]]]), ValueError,
     r"bleu: expected one list of references per hypothesis, got 2 hypotheses and 1 reference lists"),
    (lambda: metrics.bleu([["a"]], [[["a"]]], smooth="add-one"), ValueError, r"bleu: smooth must be one of"),
])
def test_metrics_refuse_bad_input_naming_themselves(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------ BLEU: equal to sacrebleu

def _corpus(seed: int, size: int, refs: int):
    """Random token lists over a 6-word vocabulary: hypotheses near their references (some matches at
    every order), lengths 0..9, `refs` references per hypothesis."""
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat"]
    sentence = lambda: [rng.choice(words) for _ in range(rng.randint(0, 9))]       # noqa: E731
    references = [[sentence() for _ in range(refs)] for _ in range(size)]
    hypotheses = [(r[0][:rng.randint(0, 9)] + sentence())[:9] for r in references]
    return hypotheses, references


def _sacrebleu(hypotheses, references, max_order, smooth):
    bleu = sacrebleu.metrics.BLEU(tokenize="none", smooth_method=smooth, max_ngram_order=max_order)
    streams = [[" ".join(r[j]) for r in references] for j in range(len(references[0]))]
    return bleu.corpus_score([" ".join(h) for h in hypotheses], streams).score / 100


BLEU_CORPORA = {
    "random, 1 reference": _corpus(0, 30, 1),
    "random, 3 references": _corpus(1, 30, 3),
    "one short sentence": ([["the", "cat"]], [[["the", "cat", "sat"], ["a", "cat"]]]),
    "no 4-gram matches": ([["the", "cat", "sat", "on", "mat"]], [[["the", "cat", "on", "the", "mat"]]]),
    "no match at all": ([["a", "b"], []], [[["c", "d"]], [["c"]]]),
    "identical": ([["the", "cat", "sat", "on", "the", "mat"]], [[["the", "cat", "sat", "on", "the", "mat"]]]),
    "longer than the references": ([["the", "cat", "sat", "on", "the", "mat", "mat"]], [[["the", "cat", "sat"]]]),
}


@pytest.mark.parametrize("max_order", [1, 2, 4])
@pytest.mark.parametrize("smooth", list(metrics.BLEU_SMOOTHING))
@pytest.mark.parametrize("corpus", list(BLEU_CORPORA))
def test_bleu_equals_sacrebleu(corpus, smooth, max_order):
    hypotheses, references = BLEU_CORPORA[corpus]
    got = metrics.bleu(hypotheses, references, max_order=max_order, smooth=smooth)
    assert got == pytest.approx(_sacrebleu(hypotheses, references, max_order, smooth), rel=1e-12, abs=1e-15)


def test_bleu_by_hand():
    assert metrics.bleu([["the", "cat", "sat", "on"]], [[["the", "cat", "sat", "on"]]]) == 1.0
    assert metrics.bleu([["the", "cat", "sat"]], [[["the", "cat", "sat"]]]) == 0.0     # no 4-grams to match
    # p1 = 2/2, p2 = 1/1, the reference 3 long: BP = exp(1 - 3/2), no higher orders
    assert metrics.bleu([["the", "cat"]], [[["the", "cat", "sat"]]], max_order=2) == pytest.approx(math.exp(-0.5))
    assert metrics.bleu([["the", "cat"]], [[["the", "cat", "sat"]]], smooth="none") == 0.0   # no 3-grams
