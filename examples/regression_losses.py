"""MSE, MAE, Huber and log-cosh compared: each loss and its hand gradient (`loss.grad`) against the
residual, then a linear regression fitted with each by full-batch gradient descent through `.grad`
on scikit-learn's diabetes data (442 patients, 10 features) whose training targets are partly
corrupted by large outliers. Test MAE / RMSE are measured on clean test targets.

    python examples/regression_losses.py [--steps 3000] [--outliers 0.1] [--size 5] [--out runs/regression_losses]

Split 70/30 (--seed); a fraction --outliers of the training targets gets size..2 size standard
deviations added (one-sided, so the MSE fit is pulled up). Features are standardised, targets
centred on their (corrupted) median and scaled by 1.4826 MAD, so Huber's delta is in robust-sd
units. Gradient descent: w -= lr_t X^T g, b -= lr_t sum(g), g = loss.grad(Xw + b, y), lr_t cosine
decayed to 0. Each fit is checked against an independent solver of the same objective: least
squares (scikit-learn LinearRegression) for MSE, a linear program (QuantileRegressor, q = 0.5) for
MAE, scipy L-BFGS for Huber and log-cosh. Writes regression_losses.png. Needs scikit-learn.
"""
import math

import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn

LOSSES = {"mse": fnn.losses.mse, "mae": fnn.losses.mae, "huber": fnn.losses.huber, "log_cosh": fnn.losses.log_cosh}


def corrupted_diabetes(fraction: float, size: float, seed: int):
    """Standardised (x_train, y_train corrupted, y_train clean, x_test, y_test) and (centre, scale) of y."""
    datasets = _common.require("sklearn.datasets", purpose="the diabetes data")
    x, y = datasets.load_diabetes(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    train, test = order[:int(0.7 * len(y))], order[int(0.7 * len(y)):]
    y_bad = y[train].copy()
    hit = rng.choice(len(train), int(round(fraction * len(train))), replace=False)
    y_bad[hit] += size * y[train].std() * (1 + rng.uniform(size=len(hit)))
    mean, std = x[train].mean(0), x[train].std(0)
    centre = np.median(y_bad)
    scale = 1.4826 * np.median(np.abs(y_bad - centre))
    f32 = lambda a: np.asarray(a, np.float32)
    return (f32((x[train] - mean) / std), f32((y_bad - centre) / scale), f32((y[train] - centre) / scale),
            f32((x[test] - mean) / std), y[test], (centre, scale)), len(hit)


def descend(loss, x, y, steps: int, lr: float):
    """Full-batch gradient descent on loss(x @ w + b, y) through loss.grad; (w, b) and the loss curve."""
    @jax.jit
    def run(x, y):
        def step(wb, t):
            w, b = wb
            pred = x @ w + b
            g = loss.grad(pred, y)                                    # dL/dpred, (n,)
            lr_t = lr * 0.5 * (1 + jnp.cos(math.pi * t / steps))
            return (w - lr_t * (x.T @ g), b - lr_t * g.sum()), loss(pred, y)
        zero = (jnp.zeros(x.shape[1], x.dtype), jnp.zeros((), x.dtype))
        return jax.lax.scan(step, zero, jnp.arange(steps, dtype=x.dtype))
    (w, b), curve = run(jnp.asarray(x), jnp.asarray(y))
    return np.asarray(w), float(b), np.asarray(curve)


def reference(name: str, x, y, delta: float):
    """(w, b) minimising the same objective by an independent solver (module docstring)."""
    linear = _common.require("sklearn.linear_model", purpose="the reference fits")
    if name in ("mse", "mae"):
        model = (linear.LinearRegression() if name == "mse" else
                 linear.QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs"))
        model.fit(x, y)
        return model.coef_, float(model.intercept_)
    optimize = _common.require("scipy.optimize", purpose="the reference fits")
    x, y = x.astype(np.float64), y.astype(np.float64)

    def objective(wb):
        r = x @ wb[:-1] + wb[-1] - y
        if name == "huber":
            a = np.abs(r)
            value, d = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)), np.clip(r, -delta, delta)
        else:
            value, d = np.logaddexp(r, -r) - np.log(2), np.tanh(r)
        return value.mean(), np.append(x.T @ d, d.sum()) / len(y)
    wb = optimize.minimize(objective, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                           options={"gtol": 1e-10, "maxiter": 10000}).x
    return wb[:-1], float(wb[-1])


def errors(w, b, x, y_true, centre_scale):
    """Test (MAE, RMSE) in the data's units (disease progression points)."""
    centre, scale = centre_scale
    pred = (x @ w + b) * scale + centre
    return float(np.abs(pred - y_true).mean()), float(np.sqrt(((pred - y_true) ** 2).mean())), pred


def plot(path, fits, y_test, delta):
    plt = _common.require("matplotlib.pyplot", purpose="the loss plot")
    plt.switch_backend("Agg")
    r = jnp.linspace(-4.0, 4.0, 401)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for name in LOSSES:
        loss = LOSSES[name].partial(delta=delta) if name == "huber" else LOSSES[name]
        label = f"huber (delta={delta:g})" if name == "huber" else name
        axes[0].plot(r, loss(r, jnp.zeros_like(r), reduction="none"), label=label)
        axes[1].plot(r, loss.grad(r, jnp.zeros_like(r), reduction="none"), label=label)
    axes[0].set(title="loss l(r), r = pred - target", xlabel="residual r", ylim=(0, 4))
    axes[1].set(title="hand gradient dl/dpred (loss.grad)", xlabel="residual r", ylim=(-3, 3))
    for name, pred in fits.items():
        axes[2].scatter(y_test, pred, s=8, alpha=0.6, label=name)
    lims = [y_test.min(), y_test.max()]
    axes[2].plot(lims, lims, "k--", lw=1)
    axes[2].set(title="test set: predicted vs true (clean targets)", xlabel="true", ylabel="predicted")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = _common.parser(__doc__, out="runs/regression_losses",
                            small="python examples/regression_losses.py --steps 1000")
    parser.add_argument("--steps", type=int, default=3000, help="gradient-descent steps per fit (default: 3000)")
    parser.add_argument("--lr", type=float, default=0.1, help="initial step size, cosine-decayed (default: 0.1)")
    parser.add_argument("--outliers", type=float, default=0.1, help="fraction of training targets corrupted "
                        "(default: 0.1)")
    parser.add_argument("--size", type=float, default=5.0, help="outlier size, in target standard deviations "
                        "(default: 5)")
    parser.add_argument("--delta", type=float, default=1.0, help="Huber's delta, robust-sd units (default: 1)")
    args = parser.parse_args()
    _common.check_budget(steps=args.steps)
    if not 0 <= args.outliers < 0.5 or args.delta <= 0:
        _common.refuse(f"--outliers {args.outliers} --delta {args.delta}: need 0 <= outliers < 0.5, delta > 0")
    data, corrupted = corrupted_diabetes(args.outliers, args.size, args.seed)
    x_tr, y_bad, y_clean, x_te, y_te, centre_scale = data
    print(f"diabetes: {len(x_tr)} train ({corrupted} targets corrupted), {len(x_te)} test (clean)")
    runs = [(name, name, y_bad) for name in LOSSES] + [("mse, clean targets", "mse", y_clean)]
    fits, table = {}, {}
    for label, name, y in runs:
        loss = LOSSES[name].partial(delta=args.delta) if name == "huber" else LOSSES[name]
        w, b, curve = descend(loss, x_tr, y, args.steps, args.lr)
        w_ref, b_ref = reference(name, x_tr, y, args.delta)
        mae, rmse, pred = errors(w, b, x_te, y_te, centre_scale)
        ref_mae, ref_rmse, _ = errors(w_ref, b_ref, x_te, y_te, centre_scale)
        gap = curve[-1] - float(loss(jnp.asarray(x_tr @ w_ref + b_ref, jnp.float32), jnp.asarray(y)))
        table[label] = (mae, rmse, ref_mae, ref_rmse, gap)
        if "clean" not in label:
            fits[label] = pred
    print(f"{'fit':20s} {'test MAE':>9s} {'test RMSE':>10s} {'ref MAE':>8s} {'ref RMSE':>9s} {'train gap':>10s}")
    for label, (mae, rmse, ref_mae, ref_rmse, gap) in table.items():
        print(f"{label:20s} {mae:9.2f} {rmse:10.2f} {ref_mae:8.2f} {ref_rmse:9.2f} {gap:10.2e}")
    path = _common.out_dir(args) / "regression_losses.png"
    plot(path, fits, y_te, args.delta)
    print(f"wrote {path}")
    _common.result(**{f"{k.split(',')[0]}{'_clean' if 'clean' in k else ''}_test_mae": v[0]
                      for k, v in table.items()},
                   mse_test_rmse=table["mse"][1], huber_test_rmse=table["huber"][1])


if __name__ == "__main__":
    _common.run(main)
