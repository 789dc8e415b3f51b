"""Memory of one forward + hand-derived backward pass: reversible couplings (fnn.layers.Reversible,
the backward recomputes the inputs) against plain residual blocks, as the depth grows.

    python benchmarks/reversible_memory.py [--depths 8 16 32] [--batch 128] [--width 512]

Memory is XLA's own account of the compiled pass, `jax.jit(pass).lower(...).compile()
.memory_analysis()`: temporaries (the activations kept for the backward live there) and the peak,
arguments + outputs + temporaries. Nothing is run, only compiled. FLOPs are XLA's cost analysis,
to show what the recomputation costs. Each block has the same parameters in every row: residual
x + MLP(x) on width D (D -> D -> D, ReLU), or a coupling whose F and G are MLPs D/2 -> D -> D/2.
"""
import argparse
import platform

import jax
import jax.numpy as jnp

import fnn
from fnn import layers as L


def mlp(hidden, out):
    return fnn.serial(L.Dense(hidden), L.Relu(), L.Dense(out))


def models(depth, width):
    """(row name, layer) for one depth; every row holds the same parameters."""
    half = width // 2
    pairs = [layer for _ in range(depth) for layer in (mlp(width, half), mlp(width, half))]
    return [
        ("residual blocks, x + MLP(x)", fnn.serial(*(fnn.residual(mlp(width, width)) for _ in range(depth)))),
        ("couplings one per layer, each caching its output",
         fnn.serial(*(L.Reversible(mlp(width, half), mlp(width, half)) for _ in range(depth)))),
        ("one Reversible stack, recomputing", L.Reversible(*pairs)),
    ]


def measure(layer, batch, width):
    _, params, state = layer.init(jax.random.PRNGKey(0), (width,))
    x = jnp.ones((batch, width), jnp.float32)

    def forward_backward(params, x, dy):
        _, _, cache = layer.forward(params, state, x)
        return layer.backward(params, cache, dy)

    compiled = jax.jit(forward_backward).lower(params, x, x).compile()
    stats, cost = compiled.memory_analysis(), compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    peak = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    n_params = sum(a.size for a in jax.tree.leaves(params))
    return stats.temp_size_in_bytes, peak, cost.get("flops", float("nan")), n_params


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--width", type=int, default=512)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {platform.processor() or platform.machine()}, batch {args.batch}, "
          f"width {args.width}, float32; one activation of the batch = {args.batch * args.width * 4 / 2**20:.2f} MiB\n")
    print("| depth | model | params | temporaries MiB | peak MiB | temporaries / residual | FLOPs / residual |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for depth in args.depths:
        base = None
        for name, layer in models(depth, args.width):
            temp, peak, flops, n_params = measure(layer, args.batch, args.width)
            base = base or (temp, flops)
            print(f"| {depth} | {name} | {n_params / 1e6:.2f} M | {temp / 2**20:.1f} | {peak / 2**20:.1f} | "
                  f"{temp / base[0]:.2f} | {flops / base[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
