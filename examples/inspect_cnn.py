"""Look inside the Fashion-MNIST CNN: train it briefly (or load a run directory), then write,
for a few test images, Grad-CAM, saliency, integrated gradients and occlusion, the first
layer's filters and feature maps, inputs that maximally excite some second-layer channels,
and an index.html that shows them in a grid.

    python examples/inspect_cnn.py [--run RUN_DIR] [--out DIR] [--images N]
"""
import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import inspect as fi
from fnn.inspect.report import write_report


def train_briefly(x, y):
    """One epoch on 12000 training images, hand-derived gradients (82.7% test accuracy measured)."""
    model = fnn.models.cnn()
    _, params, state = model.init(jax.random.PRNGKey(0), x.shape[1:])
    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-3), (x[:12000], y[:12000]), loss=fnn.losses.softmax_cross_entropy,
        epochs=1, batch_size=64, key=jax.random.PRNGKey(1), grads="manual", loop="step", progress=False)
    return model, params, state


def load_run(run_dir):
    from fnn import runs
    cfg = runs._read_config(Path(run_dir))
    setup = runs._setup(cfg, cfg["batch_size"])
    params, state, *_ = runs._load_weights(runs._checkpoint_path(Path(run_dir), "last"), setup)
    return setup.model, params, state


def maximize(model, params, state, layer, units, out):
    """Inputs that maximise the mean activation of a few channels of `layer`."""
    images = []
    for unit in units:
        image, objective = fi.activation_maximization(model, params, state, unit, layer=layer,
                                                      in_shape=(28, 28, 1), steps=120, key=jax.random.PRNGKey(unit))
        images.append(np.asarray(image))
        print(f"  {layer} channel {unit}: mean activation {objective:.2f}")
    return fi.plot_images({f"channel {units[0]}..{units[-1]}": np.stack(images)}, out,
                          title=f"inputs that maximise channels of {layer}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a run directory from `python -m fnn train --model cnn`")
    ap.add_argument("--out", default="out/inspect_cnn")
    ap.add_argument("--images", type=int, default=6)
    args = ap.parse_args()
    train_x, train_y = fnn.data.load_dataset("fashion-mnist", "train")
    test_x, test_y = fnn.data.load_dataset("fashion-mnist", "test")
    model, params, state = load_run(args.run) if args.run else train_briefly(train_x, train_y)
    accuracy = fnn.train.evaluate(model, params, state, (test_x, test_y), loss=fnn.losses.softmax_cross_entropy)
    print(f"test accuracy {accuracy['accuracy']:.4f}")
    names = fnn.data.CLASS_NAMES["fashion-mnist"]
    picks = np.concatenate([np.flatnonzero(test_y == c)[:1] for c in range(args.images)])  # one per class
    index = write_report(model, params, state, jnp.asarray(test_x[picks]), test_y[picks], args.out,
                         class_names=names)
    maximize(model, params, state, "cnn/Relu_2", list(range(8)), Path(args.out) / "maximization.png")
    with open(index, "a") as page:
        page.write('<h2>Inputs that maximise channels 0-7 of <code>cnn/Relu_2</code></h2>'
                   '<img src="maximization.png">\n')
    print(f"wrote {index}")


if __name__ == "__main__":
    main()
