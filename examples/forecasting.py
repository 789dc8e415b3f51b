"""One-year-ahead forecasts of the yearly sunspot number (1700-2008, shipped with statsmodels:
`pip install statsmodels`, the `examples` extra): an LSTM reading the last 20 years, against
the last value and a linear autoregressive model AR(20) fitted by least squares.
Trained on the years up to 1950, tested on 1951-2008.

    python examples/forecasting.py [--epochs 300] [--limit YEARS] [--out runs/forecasting]
"""
import _common
import jax
import numpy as np

import fnn
from fnn import layers as L

WINDOW, SPLIT_YEAR = 20, 1950


def windows(series, years):
    x = np.stack([series[i - WINDOW:i] for i in range(WINDOW, len(series))])
    return x[..., None].astype(np.float32), series[WINDOW:].astype(np.float32), years[WINDOW:]


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def main():
    parser = _common.parser(__doc__, out="runs/forecasting", epochs=300, limit=None,
                            limit_help="training windows, the latest before 1951",
                            small="python examples/forecasting.py --epochs 20")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=32, epochs=args.epochs)
    sm = _common.require("statsmodels.api", purpose="the sunspot data")
    data = sm.datasets.sunspots.load_pandas().data
    years, raw = data["YEAR"].to_numpy().astype(int), data["SUNACTIVITY"].to_numpy()
    train_end = int(np.searchsorted(years, SPLIT_YEAR, side="right"))
    mean, std = raw[:train_end].mean(), raw[:train_end].std()
    x, y, target_years = windows((raw - mean) / std, years)
    train = target_years <= SPLIT_YEAR
    x_train, y_train, x_test, y_test = x[train], y[train], x[~train], y[~train]
    if args.limit is not None:
        x_train, y_train = x_train[-args.limit:], y_train[-args.limit:]

    truth = y_test * std + mean
    last_value = x_test[:, -1, 0] * std + mean
    design = lambda a: np.concatenate([a[..., 0], np.ones((len(a), 1), np.float32)], axis=1)   # noqa: E731
    coef, *_ = np.linalg.lstsq(design(x_train), y_train, rcond=None)
    linear = design(x_test) @ coef * std + mean

    model = fnn.serial(L.LSTM(32), L.Dense(1))
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (WINDOW, 1))
    params, state, _, _ = fnn.train.fit(
        model, params, state, fnn.optim.adam(3e-3), (x_train, y_train[:, None]), loss=fnn.losses.mse,
        epochs=args.epochs, batch_size=32, key=jax.random.PRNGKey(args.seed + 1), grads="manual", progress=False)
    lstm = np.asarray(model.apply(params, state, x_test)[0])[:, 0] * std + mean

    print(f"test RMSE, {target_years[~train][0]}-{target_years[-1]} ({len(truth)} years, one year ahead):")
    for name, forecast in (("last value", last_value), (f"linear AR({WINDOW})", linear), ("LSTM(32)", lstm)):
        print(f"  {name:<16} {rmse(forecast, truth):7.2f}")
    _common.result(lstm_rmse=rmse(lstm, truth), ar_rmse=rmse(linear, truth), last_value_rmse=rmse(last_value, truth))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[plot]')")
        return
    fig, ax = plt.subplots(figsize=(8, 3.5))
    test_years = target_years[~train]
    ax.plot(test_years, truth, "k-", label="sunspots")
    for name, forecast, style in (("last value", last_value, ":"), ("AR(20)", linear, "--"), ("LSTM", lstm, "-")):
        ax.plot(test_years, forecast, style, label=name)
    ax.set_xlabel("year"), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(_common.out_dir(args) / "forecasting.png", dpi=100)
    print(f"plot: {args.out / 'forecasting.png'}")


if __name__ == "__main__":
    _common.run(main)
