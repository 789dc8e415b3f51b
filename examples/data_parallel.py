"""Data-parallel training on every device there is: the same `fit`, one `mesh=` argument.

    python examples/data_parallel.py [--epochs 2] [--limit 12000] [--shard-params] [--grads manual]
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/data_parallel.py

Each batch is split over the devices; XLA inserts the gradient all-reduce (and BatchNorm's
statistics are over the whole batch). On a CPU, simulated devices share the same cores:
this shows the mechanics, not a speed-up. Several machines: see README "Scaling out".
"""
import _common
import jax

import fnn
from fnn import distributed


def main():
    parser = _common.parser(__doc__, out=None, limit=12000, epochs=2,
                            small="python examples/data_parallel.py --limit 2000 --epochs 1")
    parser.add_argument("--grads", default="autodiff", choices=["autodiff", "manual"])
    parser.add_argument("--shard-params", action="store_true", help="ZeRO/FSDP: params and Adam state split")
    args = parser.parse_args()

    mesh = distributed.data_mesh()                      # every device of every process
    plan = distributed.plan(mesh, shard_params=args.shard_params)
    batch_size = 32 * mesh.size                         # 32 examples per device
    _common.check_budget(limit=args.limit, batch_size=batch_size, epochs=args.epochs)
    print(f"using {mesh.size} device(s) ({jax.devices()[0].platform}), global batch {batch_size}, "
          f"params {'sharded' if args.shard_params else 'replicated'}")

    x_train, y_train = fnn.data.load_dataset("fashion-mnist", "train")
    x_test, y_test = fnn.data.load_dataset("fashion-mnist", "test")
    model = fnn.models.mlp()
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (28, 28, 1))
    params, state, opt_state, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-3), (x_train[:args.limit], y_train[:args.limit]),
        loss=fnn.losses.softmax_cross_entropy, epochs=args.epochs, batch_size=batch_size,
        key=jax.random.PRNGKey(args.seed + 1), grads=args.grads, progress=distributed.is_main(), mesh=plan)

    per_device = distributed.memory_per_device((params, opt_state))
    result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
    print(f"trained on {mesh.size} device(s): test accuracy {result['accuracy']:.4f} after {args.epochs} epochs "
          f"({sum(history['epoch_seconds']):.1f} s); params + Adam state per device {per_device / 2**20:.2f} MB")
    _common.result(test_accuracy=result["accuracy"], devices=mesh.size)


if __name__ == "__main__":
    _common.run(main)
