"""Every fnn.optim optimizer on a ravine: f(x, y) = 0.02 x^2 + 2 y^2, from (-9, 1.5), and a rule
of your own written as a transform and chained with the library's parts.

The valley floor (y = 0) is 100 times flatter than its walls. Plain SGD with a rate the walls
allow bounces across the ravine and crawls along it; momentum builds speed along the floor;
the adaptive rules rescale each coordinate. Prints the loss after N steps for each rule and,
if matplotlib is installed, draws the trajectories.

    python examples/optimizers.py [--steps 100] [--out runs/optimizers]
"""
from typing import NamedTuple

import _common
import jax
import jax.numpy as jnp

import fnn.optim as fo

START = jnp.array([-9.0, 1.5])


# A new rule is a transform: init(params) -> state, update(grads, state, params) -> (updates, state).
class NoiseState(NamedTuple):
    count: jax.Array   # (), int32: updates so far
    key: jax.Array     # the PRNG key of the next draw


def add_noise(eta: float = 0.1, gamma: float = 0.55, seed: int = 0) -> fo.Optimizer:
    """g <- g + N(0, eta / (1 + t)^gamma) (Neelakantan et al. 2015, annealed gradient noise)."""
    def update(grads, state, params=None, **extra):
        key, draw = jax.random.split(state.key)
        std = jnp.sqrt(eta / (1.0 + state.count) ** gamma)
        noisy = jax.tree.map(lambda g: g + std * jax.random.normal(draw, g.shape, g.dtype), grads)
        return noisy, NoiseState(state.count + 1, key)

    return fo.Optimizer(lambda params: NoiseState(jnp.zeros([], jnp.int32), jax.random.PRNGKey(seed)), update)


RULES = {  # name: optimizer (rates picked by hand for this loss)
    "sgd": fo.sgd(0.45),
    "sgd+momentum": fo.sgd(0.05, momentum=0.9),
    "sgd+nesterov": fo.sgd(0.05, momentum=0.9, nesterov=True),
    "adagrad": fo.adagrad(1.0),
    "rmsprop": fo.rmsprop(0.1),
    "adam": fo.adam(0.3),
    "adamw": fo.adamw(0.3, weight_decay=1e-3),
    "nadam": fo.nadam(0.3),
    "amsgrad": fo.amsgrad(0.3),
    "adabelief": fo.adabelief(0.3),
    "radam": fo.radam(0.3),                 # rectified: r_t is still ~0.2 at t = 100 (b2 = 0.999)
    "lion": fo.lion(fo.cosine_decay(0.3, 100), weight_decay=0.0),
    "adafactor": fo.adafactor(0.3, momentum=0.9),
    "lamb": fo.lamb(fo.cosine_decay(0.3, 100)),
    "lars": fo.lars(fo.cosine_decay(0.1, 100), trust_coefficient=1.0),
    # your own rule in a chain: noisy gradients, clipped, through Adam's direction and a schedule
    "noisy adam": fo.chain(add_noise(0.5), fo.clip_by_global_norm(5.0), fo.scale_by_adam(),
                           fo.scale_by_learning_rate(fo.warmup_cosine(0.0, 0.3, 10, 100))),
}


def ravine(p):
    return 0.02 * p[0] ** 2 + 2.0 * p[1] ** 2


def trajectory(opt, steps):
    """The points visited in `steps` updates from START (START included)."""
    def step(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(ravine)(p), state, p)
        p = fo.apply_updates(p, updates)
        return (p, state), p

    _, path = jax.lax.scan(step, (START, opt.init(START)), None, length=steps)
    return jnp.concatenate([START[None], path])


def plot(paths, filename):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = jnp.meshgrid(jnp.linspace(-10, 2, 200), jnp.linspace(-2, 2, 100))
    fig, axes = plt.subplots(4, 4, figsize=(15, 11), sharex=True, sharey=True)
    for ax, (name, path) in zip(axes.flat, paths.items(), strict=True):
        ax.contour(xs, ys, ravine((xs, ys)), levels=jnp.geomspace(0.01, 10, 12), colors="0.8")
        ax.plot(path[:, 0], path[:, 1], ".-", ms=2, lw=0.8)
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(filename, dpi=90)


def main():
    parser = _common.parser(__doc__, out="runs/optimizers", small="python examples/optimizers.py")
    parser.add_argument("--steps", type=int, default=100, help="updates per rule (default: 100)")
    args = parser.parse_args()
    _common.check_budget(steps=args.steps)
    paths = {name: jax.jit(trajectory, static_argnums=(0, 1))(opt, args.steps) for name, opt in RULES.items()}
    print(f"{'rule':<14} {'loss after ' + str(args.steps):>16}  (start: {float(ravine(START)):.3f})")
    for name, path in paths.items():
        print(f"{name:<14} {float(ravine(path[-1])):16.3e}")
    best = min(paths, key=lambda name: float(ravine(paths[name][-1])))
    try:
        plot(paths, _common.out_dir(args) / "optimizers.png")
        print(f"trajectories drawn to {args.out / 'optimizers.png'}")
    except ImportError:
        print("matplotlib is not installed: no figure (pip install -e '.[plot]')")
    _common.result(best=best, best_loss=float(ravine(paths[best][-1])), steps=args.steps)


if __name__ == "__main__":
    main()
