"""One-year-ahead forecasts of the yearly sunspot number (1700-2008, shipped with statsmodels:
`pip install statsmodels`, the `examples` extra): an LSTM against the last value and a linear
autoregressive model AR(20) fitted by least squares. Trained on the years up to 1950, tested on
1951-2008. The recipe (chosen on validation years inside 1700-1950, docs/results.md): sqrt, then
standardise; the last 10 years in; LSTM(32), dropout 0.1, Dense(1); Adam 1e-3, 150 epochs.
Three seeds, each trained with the hand-derived backward; their mean RMSE and their ensemble.

    python examples/forecasting.py [--epochs 150] [--seeds 3] [--limit YEARS] [--out runs/forecasting]
"""
import _common
import jax
import numpy as np

import fnn
from fnn import layers as L

WINDOW, AR_ORDER, SPLIT_YEAR = 10, 20, 1950


def windows(series, width):
    """(inputs (N, width), targets (N,)): each year's value after the `width` years before it."""
    x = np.stack([series[i - width:i] for i in range(width, len(series))])
    return x, series[width:]


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def autoregression(raw, train_end):
    """AR(20) by least squares on the training years; its forecasts of every later year."""
    x, y = windows(raw, AR_ORDER)
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    fitted = slice(0, train_end - AR_ORDER)
    coef, *_ = np.linalg.lstsq(design[fitted], y[fitted], rcond=None)
    return design[train_end - AR_ORDER:] @ coef


def lstm_forecast(raw, train_end, seed, args):
    """Train on sqrt-standardised windows of the training years; forecast the test years."""
    root = np.sqrt(raw)
    mean, std = root[:train_end].mean(), root[:train_end].std()
    x, y = windows((root - mean) / std, WINDOW)
    x, y = x[..., None].astype(np.float32), y[:, None].astype(np.float32)
    n_train = train_end - WINDOW
    first = 0 if args.limit is None else max(0, n_train - args.limit)
    model = fnn.serial(L.LSTM(32), L.Dropout(0.1), L.Dense(1))
    _, params, state = model.init(jax.random.PRNGKey(seed), (WINDOW, 1))
    params, state, _, _ = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-3), (x[first:n_train], y[first:n_train]),
        loss=fnn.losses.mse, epochs=args.epochs, batch_size=32, key=jax.random.PRNGKey(seed + 1000),
        grads="manual", loop="scan", progress=False)
    z = np.asarray(model.apply(params, state, x[n_train:])[0])[:, 0].astype(np.float64)
    return np.maximum(z * std + mean, 0.0) ** 2


def plot(args, years, truth, forecasts):
    """The forecasts over the test years (top) and their errors, truth - forecast (bottom)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(years, truth, "k-", lw=2, label="sunspots")
    for (name, forecast), style in zip(forecasts.items(), (":", "--", "-")):
        top.plot(years, forecast, style, label=f"{name} (RMSE {rmse(forecast, truth):.1f})")
        bottom.plot(years, truth - forecast, style, label=name)
    bottom.axhline(0, color="k", lw=0.5)
    top.set_ylabel("sunspot number"), bottom.set_ylabel("truth - forecast"), bottom.set_xlabel("year")
    top.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(_common.out_dir(args) / "forecasting.png", dpi=100)


def main():
    parser = _common.parser(__doc__, out="runs/forecasting", epochs=150, limit=None,
                            limit_help="training windows, the latest before 1951",
                            small="python examples/forecasting.py --epochs 2 --seeds 1")
    parser.add_argument("--seeds", type=int, default=3, help="seeds --seed, --seed + 1, ... (default: 3)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=32, epochs=args.epochs)
    if args.seeds < 1:
        _common.refuse(f"--seeds {args.seeds}: at least 1 seed is needed")
    sm = _common.require("statsmodels.api", purpose="the sunspot data")
    data = sm.datasets.sunspots.load_pandas().data
    years, raw = data["YEAR"].to_numpy().astype(int), data["SUNACTIVITY"].to_numpy().astype(np.float64)
    train_end = int(np.searchsorted(years, SPLIT_YEAR, side="right"))
    truth, test_years = raw[train_end:], years[train_end:]
    last, linear = raw[train_end - 1:-1], autoregression(raw, train_end)
    nets = [lstm_forecast(raw, train_end, args.seed + i, args) for i in range(args.seeds)]
    ensemble, scores = np.mean(nets, axis=0), [rmse(f, truth) for f in nets]
    mean, ar = float(np.mean(scores)), rmse(linear, truth)
    print(f"test RMSE, {test_years[0]}-{test_years[-1]} ({len(truth)} years, one year ahead):")
    print(f"  last value        {rmse(last, truth):7.2f}\n  linear AR({AR_ORDER})     {ar:7.2f}")
    for i, score in enumerate(scores):
        print(f"  LSTM, seed {args.seed + i:<6} {score:7.2f}")
    print(f"  LSTM, mean        {mean:7.2f}   {100 * (1 - mean / ar):+.1f}% against AR({AR_ORDER})")
    print(f"  LSTM, ensemble    {rmse(ensemble, truth):7.2f}   {100 * (1 - rmse(ensemble, truth) / ar):+.1f}%")
    _common.result(lstm_rmse=mean, ensemble_rmse=rmse(ensemble, truth), ar_rmse=ar,
                   last_value_rmse=rmse(last, truth), improvement_percent=100 * (1 - mean / ar))
    try:
        forecasts = {"last value": last, f"AR({AR_ORDER})": linear, f"LSTM, average of {args.seeds} seeds": ensemble}
        plot(args, test_years, truth, forecasts)
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[plot]')")
        return
    print(f"plot: {args.out / 'forecasting.png'}")


if __name__ == "__main__":
    _common.run(main)
