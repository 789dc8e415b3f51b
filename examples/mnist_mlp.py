"""The classic 784-256-128-10 MLP on Fashion-MNIST (or MNIST): a few lines of model code.

    python examples/mnist_mlp.py [--dataset mnist] [--epochs 5] [--grads manual]
"""
import argparse

import jax

import fnn
from fnn import layers as L

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--grads", default="autodiff", choices=["autodiff", "manual"])
args = parser.parse_args()

x_train, y_train = fnn.data.load_dataset(args.dataset, "train")
x_test, y_test = fnn.data.load_dataset(args.dataset, "test")

model = fnn.serial(L.Flatten(), L.Dense(256), L.Relu(), L.Dense(128), L.Relu(), L.Dense(10))
_, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
print(fnn.summary(model, (28, 28, 1)))

params, state, _, history = fnn.train.fit(
    model, params, state, fnn.optim.adam(1e-3), (x_train, y_train),
    loss=fnn.losses.softmax_cross_entropy, epochs=args.epochs, batch_size=128,
    key=jax.random.PRNGKey(1), grads=args.grads)
result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=fnn.losses.softmax_cross_entropy)
print(f"test accuracy {result['accuracy']:.4f} after {args.epochs} epochs "
      f"({sum(history['epoch_seconds']):.1f} s)")
