"""The classic learners (fnn.classic) on real data, beside an fnn MLP: one table of test accuracy
and fit time, AdaBoost's error-by-round plot, and regression on the diabetes data (an MLP with
MSE and with Huber loss against ordinary least squares).

    python examples/classic.py [--rounds 50] [--limit N] [--small iris wine] [--out runs/classic]

scikit-learn supplies the bundled data sets only (iris, wine, breast cancer, digits, diabetes);
Fashion-MNIST comes from fnn.data. Fit times include compilation (each learner compiles once per
data shape), so the small data sets mostly time XLA's compiler.
"""
import time

import _common
import jax
import numpy as np

import fnn
from fnn import classic
from fnn import layers as L

ROWS = []
SMALL = ("iris", "wine", "breast_cancer", "digits")


def timed(fn, *a, **kw):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*a, **kw))
    return out, time.perf_counter() - start


def record(data, learner, score, seconds, metric="accuracy"):
    ROWS.append((data, learner, f"{100 * score:.2f}%" if metric == "accuracy" else f"MSE {score:.0f}",
                 f"{seconds:.2f}"))
    print(f"{data:28s} {learner:26s} {ROWS[-1][2]:>10s} {seconds:7.2f} s", flush=True)


def run(data, name, learner, train, test, **fit_kw):
    params, seconds = timed(learner.fit, *train, **fit_kw)
    record(data, name, float((np.asarray(learner.predict(params, test[0])) == test[1]).mean()), seconds)
    return params


def mlp(data, train, test, classes, *, hidden=64, epochs=50, batch_size=32, loss=None, lr=1e-3, seed=0):
    """A Dense-ReLU-Dense network trained with fnn.train.fit; its test predictions and fit time."""
    model = fnn.serial(L.Dense(hidden), L.Relu(), L.Dense(classes))
    key = jax.random.PRNGKey(seed)
    _, params, state = model.init(key, train[0].shape[1:])
    start = time.perf_counter()
    params, state, _, _ = fnn.train.fit(model, params, state, fnn.optim.adam(lr), train, epochs=epochs,
                                        loss=loss or fnn.losses.softmax_cross_entropy,
                                        batch_size=batch_size, key=key, progress=False, loop="scan")
    seconds = time.perf_counter() - start
    return np.asarray(fnn.train.predict(model, params, state, test[0])), seconds


def standardise(train_x, test_x):
    mean, std = train_x.mean(0), train_x.std(0) + 1e-8
    return ((train_x - mean) / std).astype(np.float32), ((test_x - mean) / std).astype(np.float32)


def small_data_sets(args, datasets, train_test_split):
    learners = {"perceptron (standardised)": classic.perceptron(epochs=20, shuffle=True),
                "Gaussian NB": classic.gaussian_nb(), "multinomial NB": classic.multinomial_nb(),
                "complement NB": classic.complement_nb(),
                "Bernoulli NB (x > mean)": classic.bernoulli_nb(binarize=0.0),
                f"AdaBoost, {args.rounds} stumps": classic.adaboost(args.rounds)}
    for data in args.small:
        x, y = getattr(datasets, f"load_{data}")(return_X_y=True)
        x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.float32), y.astype(np.int32), test_size=0.3,
                                                  stratify=y, random_state=0)
        s_tr, s_te = standardise(x_tr, x_te)
        for name, learner in learners.items():
            scaled = "standardised" in name or "Bernoulli" in name
            run(data, name, learner, (s_tr, y_tr) if scaled else (x_tr, y_tr), (s_te if scaled else x_te, y_te),
                **({"key": jax.random.PRNGKey(args.seed)} if "perceptron" in name else {}))
        pred, seconds = mlp(data, (s_tr, y_tr), (s_te, y_te), int(y.max()) + 1, epochs=50, lr=1e-2, seed=args.seed)
        record(data, "fnn MLP 64 (50 epochs)", float((pred.argmax(1) == y_te).mean()), seconds)


def fashion_mnist(args):
    x_all, y_all = fnn.data.load_dataset("fashion-mnist", "train")
    x_tr, y_tr = x_all[:args.limit], y_all[:args.limit]
    x_te, y_te = fnn.data.load_dataset("fashion-mnist", "test")
    x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    data = "Fashion-MNIST (10 classes)"
    run(data, "Gaussian NB", classic.gaussian_nb(), (x_tr, y_tr), (x_te, y_te))
    run(data, "Bernoulli NB (pixel > 0.5)", classic.bernoulli_nb(binarize=0.5), (x_tr, y_tr), (x_te, y_te))
    run(data, "multinomial NB", classic.multinomial_nb(), (x_tr, y_tr), (x_te, y_te))
    run(data, "perceptron (1 epoch)", classic.perceptron(epochs=1, shuffle=True), (x_tr, y_tr), (x_te, y_te),
        key=jax.random.PRNGKey(args.seed))
    pred, seconds = mlp(data, (x_tr, y_tr), (x_te, y_te), 10, hidden=128, epochs=2, batch_size=128, seed=args.seed)
    record(data, "fnn MLP 128 (2 epochs)", float((pred.argmax(1) == y_te).mean()), seconds)

    pair = "Fashion-MNIST T-shirt/shirt"
    keep_tr, keep_te = np.isin(y_all, (0, 6)), np.isin(y_te, (0, 6))      # --limit images of the two classes
    x_pair = x_all[keep_tr].reshape(-1, x_tr.shape[1])
    train, test = (x_pair[:args.limit], y_all[keep_tr][:args.limit]), (x_te[keep_te], y_te[keep_te])
    booster = classic.adaboost(args.rounds)
    params = run(pair, f"AdaBoost, {args.rounds} stumps", booster, train, test)
    run(pair, "Gaussian NB", classic.gaussian_nb(), train, test)
    pred, seconds = mlp(pair, (train[0], (train[1] == 6).astype(np.int32)), test, 2, hidden=128, epochs=5,
                        batch_size=128, seed=args.seed)
    record(pair, "fnn MLP 128 (5 epochs)", float(((pred.argmax(1) == 1) == (test[1] == 6)).mean()), seconds)
    return booster, params, train, test


def plot_rounds(args, booster, params, train, test):
    matplotlib = _common.require("matplotlib", purpose="the AdaBoost plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    errors = {name: (np.asarray(booster.staged_predict(params, x)) != y).mean(1)
              for name, (x, y) in (("training", train), ("test", test))}
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, error in errors.items():
        ax.plot(np.arange(1, len(error) + 1), 100 * error, label=f"{name} (last {100 * error[-1]:.2f}%)")
    ax.set(xlabel="boosting round", ylabel="error (%)", title="AdaBoost with stumps: T-shirt vs shirt")
    ax.legend()
    fig.tight_layout()
    fig.savefig(_common.out_dir(args) / "classic_adaboost.png", dpi=120)
    print(f"wrote {args.out / 'classic_adaboost.png'}")


def diabetes(args, datasets, train_test_split):
    x, y = datasets.load_diabetes(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0)
    s_tr, s_te = standardise(x_tr, x_te)
    start = time.perf_counter()
    design = np.c_[np.ones(len(s_tr)), s_tr]
    coef = np.linalg.lstsq(design, y_tr, rcond=None)[0]
    ols = np.c_[np.ones(len(s_te)), s_te] @ coef
    record("diabetes (regression)", "ordinary least squares", float(((ols - y_te) ** 2).mean()),
           time.perf_counter() - start, metric="mse")
    mean, std = y_tr.mean(), y_tr.std()
    target = ((y_tr - mean) / std).astype(np.float32)[:, None]
    for name, loss in (("MSE", fnn.losses.mse), ("Huber", fnn.losses.huber)):
        pred, seconds = mlp("diabetes", (s_tr, target), (s_te, None), 1, hidden=16, epochs=60, batch_size=16,
                            loss=loss, lr=3e-3, seed=args.seed)
        record("diabetes (regression)", f"fnn MLP 16, {name} loss", float(((pred[:, 0] * std + mean - y_te) ** 2)
                                                                           .mean()), seconds, metric="mse")


def main():
    parser = _common.parser(__doc__, out="runs/classic", limit=None,
                            limit_help="Fashion-MNIST training images (and of the T-shirt/shirt pair)",
                            small="python examples/classic.py --limit 2000 --rounds 5 --small iris")
    parser.add_argument("--rounds", type=int, default=50, help="AdaBoost rounds (default: 50)")
    parser.add_argument("--small", nargs="*", default=SMALL, choices=SMALL, metavar="DATA",
                        help=f"the small data sets to run, of {' '.join(SMALL)} (default: all)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=128, steps=args.rounds)
    datasets = _common.require("sklearn.datasets", purpose="the bundled data sets")
    train_test_split = _common.require("sklearn.model_selection", purpose="the splits").train_test_split
    small_data_sets(args, datasets, train_test_split)
    plot_rounds(args, *fashion_mnist(args))
    diabetes(args, datasets, train_test_split)
    print("\n| data | learner | test accuracy (regression: MSE) | fit s |\n| --- | --- | ---: | ---: |")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")
    mlp_row = next(row for row in ROWS if row[1].startswith("fnn MLP 128 (2"))
    _common.result(fashion_mnist_mlp_accuracy=mlp_row[2], rows=len(ROWS))


if __name__ == "__main__":
    _common.run(main)
