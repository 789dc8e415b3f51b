"""Fashion-MNIST read as sequences: each image is 28 steps of 28 pixels, read top to bottom
by an LSTM (or GRU) whose last state feeds a Dense classifier. Hand-written BPTT by default.

    python examples/sequence_classifier.py [--cell lstm|gru] [--hidden 128] [--epochs 10]
"""
import argparse

import jax

import fnn
from fnn import layers as L

parser = argparse.ArgumentParser()
parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
parser.add_argument("--hidden", type=int, default=128)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--grads", default="manual", choices=["autodiff", "manual"])
args = parser.parse_args()

x_train, y_train = fnn.data.load_dataset("fashion-mnist", "train")
x_test, y_test = fnn.data.load_dataset("fashion-mnist", "test")
x_train, x_test = x_train.reshape(-1, 28, 28), x_test.reshape(-1, 28, 28)   # (N, T=28 rows, F=28 pixels)

cell = {"lstm": L.LSTM, "gru": L.GRU, "rnn": L.SimpleRNN}[args.cell]
model = fnn.serial(cell(args.hidden), L.Dense(10))
_, params, state = model.init(jax.random.PRNGKey(0), (28, 28))
print(fnn.summary(model, (28, 28)))



def report(epoch, params, state, opt_state, history):
    test = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
    print(f"epoch {epoch + 1}: train loss {history['train_loss'][-1]:.4f}, train accuracy "
          f"{history['train_accuracy'][-1]:.4f}, test accuracy {test['accuracy']:.4f} "
          f"({history['epoch_seconds'][-1]:.1f} s)", flush=True)


params, state, _, history = fnn.train.fit(
    model, params, state, fnn.optim.adam(2e-3), (x_train, y_train),
    loss=fnn.losses.softmax_cross_entropy, epochs=args.epochs, batch_size=args.batch_size,
    key=jax.random.PRNGKey(1), grads=args.grads, progress=False, on_epoch=report)
result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
print(f"{args.cell.upper()}({args.hidden}): test accuracy {result['accuracy']:.4f} after {args.epochs} epochs "
      f"({sum(history['epoch_seconds']):.0f} s training, grads={args.grads})")
