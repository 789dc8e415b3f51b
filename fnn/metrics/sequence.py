"""Sequence metrics on plain Python sequences: edit distance, word and phoneme error rates, BLEU.

For the error rates, `predictions` maps a key (a word) to one predicted sequence; `references` maps the same key to
the list of its accepted sequences (a word may have several pronunciations), and a prediction
is scored against the closest one. These run on the host, after decoding: no JAX here.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

__all__ = ["BLEU_SMOOTHING", "bleu", "edit_distance", "phoneme_error_rate", "wer_per", "word_error_rate"]

# smoothing method -> its default smooth_value (sacrebleu's names and defaults; Chen & Cherry 2014)
BLEU_SMOOTHING = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}


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


def _ngrams(tokens: Sequence[Hashable], max_order: int) -> Counter:
    """Counts of every n-gram of `tokens`, 1 <= n <= max_order, as tuples."""
    tokens = tuple(tokens)
    return Counter(tokens[i:i + n] for n in range(1, max_order + 1) for i in range(len(tokens) - n + 1))


def _bleu_statistics(hypotheses, references, max_order: int) -> tuple[list, list, int, int]:
    """(clipped n-gram matches per order, hypothesis n-grams per order, hypothesis length, reference length)
    summed over the corpus; each hypothesis is measured against the reference closest in length
    (ties: the shorter) and its n-gram counts clipped by the largest count in any of its references."""
    correct, total, hyp_len, ref_len = [0] * max_order, [0] * max_order, 0, 0
    for hyp, refs in zip(hypotheses, references):
        ref_counts = Counter()
        for ref in refs:
            ref_counts |= _ngrams(ref, max_order)             # | keeps the larger count
        for gram, count in _ngrams(hyp, max_order).items():
            total[len(gram) - 1] += count
            correct[len(gram) - 1] += min(count, ref_counts[gram])
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
    return correct, total, hyp_len, ref_len


def _check_bleu(hypotheses, references, max_order: int, smooth: str) -> None:
    if smooth not in BLEU_SMOOTHING:
        raise ValueError(f"bleu: smooth must be one of {tuple(BLEU_SMOOTHING)}, got {smooth!r}")
    if not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"bleu: max_order must be a positive int, got {max_order!r}")
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"bleu: expected one list of references per hypothesis, got {len(hypotheses)} "
                         f"hypotheses and {len(references)} reference lists")
    for i, (hyp, refs) in enumerate(zip(hypotheses, references)):
        if isinstance(hyp, str) or not refs or any(isinstance(r, str) for r in refs):
            raise TypeError(f"bleu: expected hypothesis {i} as a token list and its references as a non-empty "
                            f"list of token lists, got {type(hyp).__name__} and {refs!r:.60}; split strings "
                            f"into tokens first")


def bleu(hypotheses: Sequence[Sequence[Hashable]], references: Sequence[Sequence[Sequence[Hashable]]],
         max_order: int = 4, smooth: str = "exp", smooth_value: float | None = None) -> float:
    """Corpus BLEU in [0, 1]: BP exp(mean over n = 1..max_order of log p_n) (Papineni et al. 2002).

    p_n = clipped n-gram matches / hypothesis n-grams, summed over the corpus; BP = exp(1 - r / c)
    when the hypotheses' length c is below the closest references' length r, else 1.
    `references[i]` is the list of references of `hypotheses[i]` (NLTK's corpus_bleu layout).
    smooth, for an order with no match (sacrebleu's methods and defaults): "none" gives BLEU 0;
    "floor" p_n = smooth_value / total (0.1); "exp" p_n = 1 / (2^j total) for the j-th such order;
    "add-k" adds smooth_value (1) to matches and totals of every order n >= 2.
    Equals sacrebleu's `corpus_bleu(..., tokenize="none", smooth_method=smooth).score / 100`
    on the same tokens joined by spaces; the default, "exp", is sacrebleu's default.
    """
    _check_bleu(hypotheses, references, max_order, smooth)
    k = BLEU_SMOOTHING[smooth] if smooth_value is None else smooth_value
    correct, total, hyp_len, ref_len = _bleu_statistics(hypotheses, references, max_order)
    if not any(correct):
        return 0.0
    log_sum, halvings = 0.0, 0
    for n, (c, t) in enumerate(zip(correct, total), 1):
        if smooth == "add-k" and n > 1:
            c, t = c + k, t + k
        if c == 0 and smooth == "exp":
            halvings += 1
            c = 1 / 2 ** halvings
        elif c == 0 and smooth == "floor":
            c = k
        if t == 0 or c <= 0:
            return 0.0
        log_sum += math.log(c / t)
    brevity = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_sum / max_order)
