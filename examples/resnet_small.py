"""A small ResNet on a Fashion-MNIST subset, every backward pass derived by hand.

Residual blocks as in ResNet: conv-BN-ReLU-conv-BN plus the identity, or a strided
1x1 conv-BN projection where the block changes shape. First the hand-derived gradient
of the whole network is compared with jax.grad on one batch, then a few epochs train
with grads="manual" (no autodiff anywhere in the step).

    python examples/resnet_small.py [--train-size 4096] [--epochs 2] [--grads autodiff]
"""
import argparse

import jax
import jax.numpy as jnp

import fnn
from fnn import layers as L
from fnn.gradcheck import relative_error


def block(features: int, stride: int = 1, project: bool = False) -> fnn.Layer:
    branch = fnn.serial(L.Conv2D(features, 3, stride, use_bias=False), L.BatchNorm(), L.Relu(),
                        L.Conv2D(features, 3, use_bias=False), L.BatchNorm())
    shortcut = fnn.serial(L.Conv2D(features, 1, stride, use_bias=False), L.BatchNorm()) if project else None
    return fnn.serial(fnn.residual(branch, shortcut=shortcut), L.Relu())


model = fnn.serial(
    L.Conv2D(16, 3, use_bias=False), L.BatchNorm(), L.Relu(),     # 28x28x16
    block(16), block(32, stride=2, project=True),                 # 14x14x32
    block(64, stride=2, project=True),                            # 7x7x64
    L.GlobalAvgPool(), L.Dense(10))

parser = argparse.ArgumentParser()
parser.add_argument("--train-size", type=int, default=4096)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--grads", default="manual", choices=["autodiff", "manual"])
args = parser.parse_args()

x_train, y_train = fnn.data.load_dataset("fashion-mnist", "train")
x_test, y_test = fnn.data.load_dataset("fashion-mnist", "test")
x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
_, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
print(fnn.summary(model, (28, 28, 1)))

# The hand-derived backward of the whole ResNet against jax.grad, on one batch.
loss = fnn.losses.softmax_cross_entropy
x, y = jnp.asarray(x_train[:64]), jnp.asarray(y_train[:64])
grads = {}
for how in ("manual", "autodiff"):
    compute = jax.jit(fnn.train.loss_and_grads(model, loss, how))
    grads[how] = compute(params, state, x, y, None)[2]
print(f"hand-derived vs jax.grad, relative error: {relative_error(grads['manual'], grads['autodiff']):.1e}")

params, state, _, history = fnn.train.fit(
    model, params, state, fnn.optim.adam(1e-3), (x_train, y_train), loss=loss,
    epochs=args.epochs, batch_size=128, key=jax.random.PRNGKey(1), grads=args.grads)
result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=loss)
print(f"test accuracy {result['accuracy']:.4f} after {args.epochs} epochs on {args.train_size} images "
      f"({sum(history['epoch_seconds']):.1f} s of training)")
