"""Fashion-MNIST read as sequences: each image is 28 steps of 28 pixels, read top to bottom
by an LSTM (or GRU) whose last state feeds a Dense classifier (`fnn.models.row_classifier`, the
model of `fnn train --model lstm|gru`). Hand-written BPTT by default.

    python examples/sequence_classifier.py [--cell lstm|gru|rnn] [--hidden 128] [--epochs 10]
"""
import _common
import jax

import fnn

BATCH = 128


def main():
    parser = _common.parser(__doc__, out="runs/sequence_classifier", limit=None, epochs=10,
                            small="python examples/sequence_classifier.py --limit 256 --epochs 1")
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"], help="(default: lstm)")
    parser.add_argument("--hidden", type=int, default=128, help="(default: 128)")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"(default: {BATCH})")
    parser.add_argument("--grads", default="manual", choices=["autodiff", "manual"], help="(default: manual)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=args.batch_size, epochs=args.epochs)
    (x_train, y_train), (x_test, y_test) = _common.load_fashion_mnist(args.limit)

    model = fnn.models.row_classifier(args.cell, hidden=args.hidden)      # (B, 28, 28, 1) -> (B, 10)
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (28, 28, 1))
    print(fnn.summary(model, (28, 28, 1)))

    def report(epoch, params, state, opt_state, history):
        test = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
        print(f"epoch {epoch + 1}: train loss {history['train_loss'][-1]:.4f}, train accuracy "
              f"{history['train_accuracy'][-1]:.4f}, test accuracy {test['accuracy']:.4f} "
              f"({history['epoch_seconds'][-1]:.1f} s)", flush=True)

    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(2e-3), (x_train, y_train),
        loss=fnn.losses.softmax_cross_entropy, epochs=args.epochs, batch_size=args.batch_size,
        key=jax.random.PRNGKey(args.seed + 1), grads=args.grads, progress=False, on_epoch=report)
    result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
    seconds = sum(history["epoch_seconds"])
    print(f"{args.cell.upper()}({args.hidden}): test accuracy {result['accuracy']:.4f} after {args.epochs} epochs "
          f"({seconds:.0f} s training, grads={args.grads})")
    fnn.checkpoint.save(_common.out_dir(args) / f"{args.cell}.safetensors", {"params": params, "state": state},
                        step=args.epochs, metadata={"test": result})
    _common.result(test_accuracy=result["accuracy"], epochs=args.epochs, train_examples=len(x_train))


if __name__ == "__main__":
    _common.run(main)
