"""How far back does the gradient reach? ||dL/dh_t|| over 50 steps for SimpleRNN, LSTM and GRU,
measured from fnn's hand-written backward passes (not simulated with constants), at
initialisation and after training on a task that needs step 0: "is x_0 positive?" after 50
steps of noise. dL/dh_t is the gradient of the loss with respect to the initial state of the
same layer run on x[t:] from h_t (the layer's backward returns it).

    python examples/vanishing_gradients.py [--epochs 20] [--limit 4000] [--keep-bias 1.0] [--out DIR]
"""
import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import layers as L
from fnn.losses import softmax_cross_entropy

T, H, BATCH = 50, 32, 100


def data(key, n):
    x = jax.random.normal(key, (n, T, 1))
    return x, (x[:, 0, 0] > 0).astype(jnp.int32)


def gradient_norms(cell, params, x, labels):
    """mean_b ||dL_b/dh_t|| (each sequence its own loss) for t = 0..T-1 (h_0 the zero initial
    state), one backward pass each.
    Shapes stay fixed, so one compile serves every t: h_t is the state at length t, and the
    run from h_t reads x rolled by t with lengths T - t (the tail is padding)."""
    rec, dense, states = cell(H), L.Dense(2), cell(H, return_state=True)
    lstm = cell is L.LSTM

    @jax.jit
    def at(t):
        lengths = jnp.full((x.shape[0],), t, jnp.int32)
        state = states.apply(params[0], (), (x, lengths))[0][1]
        h, _, cache = rec.forward(params[0], (), (jnp.roll(x, -t, axis=1), T - lengths, state))
        logits, _, dense_cache = dense.forward(params[1], (), h)
        _, dh = dense.backward(params[1], dense_cache, softmax_cross_entropy.grad(logits, labels, reduction="sum"))
        _, (_, _, d_state) = rec.backward(params[0], cache, dh)
        return jnp.mean(jnp.linalg.norm(d_state[0] if lstm else d_state, axis=-1))

    return np.array([float(at(t)) for t in range(T)])


def main():
    parser = _common.parser(__doc__, out="runs/vanishing_gradients", limit=4000, epochs=20,
                            limit_help="training sequences",
                            small="python examples/vanishing_gradients.py --limit 500 --epochs 2 --probe 100")
    parser.add_argument("--keep-bias", type=float, default=1.0, help="added to the forget/update gate bias")
    parser.add_argument("--probe", type=int, default=500, help="sequences the norms are averaged over (default: 500)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    if args.probe < 1:
        _common.refuse(f"--probe {args.probe}: at least 1 probe sequence is needed")
    x_train, y_train = data(jax.random.PRNGKey(args.seed), args.limit)
    x_probe, y_probe = data(jax.random.PRNGKey(args.seed + 1), args.probe)
    results, accuracies = {}, {}
    for name, cell in (("SimpleRNN", L.SimpleRNN), ("LSTM", L.LSTM), ("GRU", L.GRU)):
        model = fnn.serial(cell(H), L.Dense(2))
        _, params, state = model.init(jax.random.PRNGKey(args.seed + 2), (T, 1))
        if name != "SimpleRNN":    # bias the LSTM's forget (GRU's update) gate towards keeping the state
            gate = slice(H, 2 * H)   # f in (i, f, g, o); z in (r, z, n)
            params = ({**params[0], "b_x": params[0]["b_x"].at[gate].add(args.keep_bias)}, *params[1:])
        results[name, "init"] = gradient_norms(cell, params, x_probe, y_probe)
        params, state, _, history = fnn.train.fit(
            model, params, state, fnn.optim.adam(3e-3), (x_train, y_train), loss=softmax_cross_entropy,
            epochs=args.epochs, batch_size=BATCH, key=jax.random.PRNGKey(args.seed + 3), grads="manual", progress=False)
        results[name, "trained"] = gradient_norms(cell, params, x_probe, y_probe)
        accuracy = fnn.train.evaluate(model, params, state, (x_probe, y_probe), loss=softmax_cross_entropy)
        accuracies[name] = accuracy["accuracy"]
        print(f"{name}: probe accuracy after {args.epochs} epochs {accuracy['accuracy']:.3f}", flush=True)
    steps = [0, 10, 20, 30, 40, 49]
    print(f"\n||dL/dh_t|| (mean over {args.probe} sequences; the loss reads h_{T})")
    print(f"{'':>20}" + "".join(f"{'t=' + str(t):>10}" for t in steps))
    for (name, when), norms in results.items():
        print(f"{name + ' ' + when:>20}" + "".join(f"{norms[t]:10.2e}" for t in steps))
    _common.result(**{f"{name.lower()}_probe_accuracy": acc for name, acc in accuracies.items()})
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install -e '.[plot]')")
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, when), norms in results.items():
        ax.semilogy(range(T), norms, label=f"{name} ({when})", linestyle="-" if when == "trained" else "--")
    ax.set_xlabel("time step t"), ax.set_ylabel("||dL/dh_t||"), ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(_common.out_dir(args) / "vanishing_gradients.png", dpi=100)
    print(f"plot: {args.out / 'vanishing_gradients.png'}")


if __name__ == "__main__":
    _common.run(main)
