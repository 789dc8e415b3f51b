"""The classic 784-256-128-10 MLP on Fashion-MNIST (or MNIST): a few lines of model code.

    python examples/mnist_mlp.py [--dataset mnist --download] [--epochs 5] [--limit N] [--grads manual]
"""
import _common
import jax

import fnn
from fnn import layers as L

BATCH = 128


def main():
    parser = _common.parser(__doc__, out=None, limit=None, epochs=5,
                            small="python examples/mnist_mlp.py --limit 6000 --epochs 1")
    parser.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--download", action="store_true", help="fetch the data set if it is not found")
    parser.add_argument("--grads", default="autodiff", choices=["autodiff", "manual"])
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    try:
        x_train, y_train = fnn.data.load_dataset(args.dataset, "train", download=args.download)
        x_test, y_test = fnn.data.load_dataset(args.dataset, "test", download=args.download)
    except FileNotFoundError:
        _common.refuse(f"{args.dataset} is not installed: add --download to fetch it "
                       f"(into ~/.cache/fnn/{args.dataset}), or set FNN_DATA_DIR to a folder that holds it")
    x_train, y_train = x_train[:args.limit], y_train[:args.limit]

    model = fnn.serial(L.Flatten(), L.Dense(256), L.Relu(), L.Dense(128), L.Relu(), L.Dense(10))
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (28, 28, 1))
    print(fnn.summary(model, (28, 28, 1)))

    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-3), (x_train, y_train),
        loss=fnn.losses.softmax_cross_entropy, epochs=args.epochs, batch_size=BATCH,
        key=jax.random.PRNGKey(args.seed + 1), grads=args.grads)
    result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
    seconds = sum(history["epoch_seconds"])
    print(f"test accuracy {result['accuracy']:.4f} after {args.epochs} epochs on {len(x_train)} examples "
          f"({seconds:.1f} s)")
    _common.result(test_accuracy=result["accuracy"], epochs=args.epochs, train_examples=len(x_train))


if __name__ == "__main__":
    _common.run(main)
