"""Sequence metrics on plain Python sequences: edit distance, word and phoneme error rates.

`predictions` maps a key (a word) to one predicted sequence; `references` maps the same key to
the list of its accepted sequences (a word may have several pronunciations), and a prediction
is scored against the closest one. These run on the host, after decoding: no JAX here.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

__all__ = ["edit_distance", "phoneme_error_rate", "wer_per", "word_error_rate"]


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance: the fewest unit insertions, deletions and substitutions turning a into b.

    One row of the dynamic programme at a time: O(len(a) len(b)) time, O(len(b)) memory.
    """
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _checked(predictions: Mapping, references: Mapping, what: str) -> None:
    if not predictions:
        raise ValueError(f"{what}: no predictions to score")
    missing = [k for k in predictions if not references.get(k)]
    if missing:
        raise ValueError(f"{what}: {len(missing)} predicted keys have no reference, e.g. {missing[0]!r}")


def word_error_rate(predictions: Mapping, references: Mapping) -> float:
    """The fraction of keys whose prediction equals none of their references (exact match, 0..1)."""
    _checked(predictions, references, "word_error_rate")
    refs = {k: {tuple(r) for r in references[k]} for k in predictions}
    return sum(tuple(p) not in refs[k] for k, p in predictions.items()) / len(predictions)


def phoneme_error_rate(predictions: Mapping, references: Mapping) -> float:
    """sum over keys of edit_distance(prediction, closest reference) / sum of that reference's length.

    The closest reference is the one at the smallest distance (ties: the smaller, then the first
    in the lexical order of the sequences). Can exceed 1 when predictions are longer than references.
    """
    _checked(predictions, references, "phoneme_error_rate")
    errors = length = 0
    for key, pred in predictions.items():
        dist, ref = min((edit_distance(pred, r), tuple(r)) for r in references[key])
        errors, length = errors + dist, length + len(ref)
    return errors / max(length, 1)


def wer_per(predictions: Mapping, references: Mapping) -> tuple[float, float]:
    """(word_error_rate, phoneme_error_rate) of the same predictions, as G2P papers report them."""
    return word_error_rate(predictions, references), phoneme_error_rate(predictions, references)
