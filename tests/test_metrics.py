"""fnn.metrics: edit distance, WER and PER by hand, and against an independent implementation
(the textbook full-matrix recursion, memoised) on random sequences."""
import functools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
