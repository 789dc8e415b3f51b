"""Fit time of each fnn.classic learner against scikit-learn's on the same data, in one run.

    python benchmarks/classic.py [--rounds 50] [--repeat 3] [--out /tmp/classic.md]

Data: Fashion-MNIST train (60000 x 784, float32 pixels in [0, 1]; 10 classes) for naive Bayes and
the perceptron, its T-shirt/shirt pair (classes 0 and 6: 12000 x 784) for AdaBoost with stumps.
fnn is timed twice: the first call (compilation included) and the median of `--repeat` later
calls (compiled); scikit-learn as the median of `--repeat` calls (one for AdaBoost, whose fit takes
tens of seconds). Ratios are fnn / scikit-learn: below 1 means fnn is faster. The perceptrons
differ in rule (fnn: Rosenblatt's, targets {0, 1}; scikit-learn: SGD on the perceptron criterion),
not in cost: one pass over the samples per epoch, one-vs-rest, both with 5 epochs, no shuffling.
"""
import argparse
import os
import platform
import time

import jax
import numpy as np
import sklearn
from sklearn import ensemble, linear_model, naive_bayes, tree

import fnn
from fnn import classic

parser = argparse.ArgumentParser()
parser.add_argument("--rounds", type=int, default=50)
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--out", default=None)
args = parser.parse_args()


def seconds(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compare(name, data, ours, theirs, repeat):
    x, y = data
    first = seconds(lambda: ours.fit(x, y), 1)
    steady = seconds(lambda: ours.fit(x, y), repeat)
    oracle = seconds(lambda: theirs.fit(x, y), repeat)
    row = (name, f"{x.shape[0]} x {x.shape[1]}", f"{first:.2f}", f"{steady:.3f}", f"{oracle:.3f}",
           f"{steady / oracle:.2f}x", f"{first / oracle:.2f}x")
    print(" | ".join(row), flush=True)
    return row


def main():
    x, y = fnn.data.load_dataset("fashion-mnist", "train")
    x = x.reshape(len(x), -1)
    pair = np.isin(y, (0, 6))
    full, two = (x, y), (x[pair], y[pair])
    stump = tree.DecisionTreeClassifier(max_depth=1)
    rows = [
        compare("Gaussian NB", full, classic.gaussian_nb(), naive_bayes.GaussianNB(), args.repeat),
        compare("multinomial NB", full, classic.multinomial_nb(), naive_bayes.MultinomialNB(), args.repeat),
        compare("Bernoulli NB (binarize 0.5)", full, classic.bernoulli_nb(binarize=0.5),
                naive_bayes.BernoulliNB(binarize=0.5), args.repeat),
        compare("complement NB", full, classic.complement_nb(), naive_bayes.ComplementNB(), args.repeat),
        compare("perceptron, 5 epochs, one-vs-rest", full, classic.perceptron(epochs=5),
                linear_model.Perceptron(max_iter=5, tol=None, shuffle=False), args.repeat),
        compare(f"AdaBoost, {args.rounds} stumps, 2 classes", two, classic.adaboost(args.rounds),
                ensemble.AdaBoostClassifier(stump, n_estimators=args.rounds), 1),
    ]
    header = ("learner", "data", "fnn first s", "fnn s", "sklearn s", "fnn / sklearn", "first / sklearn")
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
             f"({jax.default_backend()}), scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
             f"load average at the end {os.getloadavg()[0]:.1f}",
             "", "| " + " | ".join(header) + " |", "|" + " --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
