"""A small ResNet on Fashion-MNIST (`fnn.models.resnet_small`, the model of `fnn train --model
resnet`), every backward pass derived by hand.

Residual blocks as in ResNet: conv-BN-ReLU-conv-BN plus the identity, or a strided 1x1
conv-BN projection where the block changes shape. First the hand-derived gradient of the whole
network is compared with jax.grad on one batch, then a few epochs train with grads="manual"
(no autodiff anywhere in the step).

    python examples/resnet_small.py [--limit 4096] [--epochs 2] [--grads autodiff]
"""
import _common
import jax
import jax.numpy as jnp

import fnn
from fnn.gradcheck import relative_error

BATCH = 128


def main():
    parser = _common.parser(__doc__, out="runs/resnet_small", limit=4096, epochs=2,
                            small="python examples/resnet_small.py --limit 256 --epochs 1")
    parser.add_argument("--width", type=int, default=16, help="the first block's channels (default: 16)")
    parser.add_argument("--grads", default="manual", choices=["autodiff", "manual"], help="(default: manual)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    (x_train, y_train), (x_test, y_test) = _common.load_fashion_mnist(args.limit)
    model = fnn.models.resnet_small(width=args.width)          # 28x28x16 -> 14x14x32 -> 7x7x64 -> 10
    _, params, state = model.init(jax.random.PRNGKey(args.seed), (28, 28, 1))
    print(fnn.summary(model, (28, 28, 1)))

    # The hand-derived backward of the whole ResNet against jax.grad, on one batch.
    loss = fnn.losses.softmax_cross_entropy
    x, y = jnp.asarray(x_train[:64]), jnp.asarray(y_train[:64])
    grads = {how: jax.jit(fnn.train.loss_and_grads(model, loss, how))(params, state, x, y, None)[2]
             for how in ("manual", "autodiff")}
    error = relative_error(grads["manual"], grads["autodiff"])
    print(f"hand-derived vs jax.grad, relative error: {error:.1e}")

    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-3), (x_train, y_train), loss=loss,
        epochs=args.epochs, batch_size=BATCH, key=jax.random.PRNGKey(args.seed + 1), grads=args.grads)
    result = fnn.train.evaluate(model, params, state, (x_test, y_test), loss=loss)
    print(f"test accuracy {result['accuracy']:.4f} after {args.epochs} epochs on {len(x_train)} images "
          f"({sum(history['epoch_seconds']):.1f} s of training)")
    fnn.checkpoint.save(_common.out_dir(args) / "resnet_small.safetensors", {"params": params, "state": state},
                        step=args.epochs, metadata={"test": result})
    _common.result(test_accuracy=result["accuracy"], gradient_error=float(error), epochs=args.epochs)


if __name__ == "__main__":
    _common.run(main)
