"""The reference models: their whole backward is checked in fnn.gradcheck (models.CASES);
here the CNN of the CLI learns on a small real subset (seconds, not the 10-epoch run)."""
from pathlib import Path

import jax
import pytest

import fnn
from fnn.losses import softmax_cross_entropy

REAL = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not REAL.exists(), reason="dataset-fashion-mnist is not installed")
def test_cnn_learns_a_real_subset_with_hand_derived_gradients():
    x, y = fnn.data.load_dataset("fashion-mnist", "train")
    xt, yt = fnn.data.load_dataset("fashion-mnist", "test")
    model = fnn.models.cnn(flip=True)
    _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
    params, state, _, history = fnn.train.fit(
        model, params, state, fnn.optim.adam(1e-3), (x[:3000], y[:3000]), loss=softmax_cross_entropy,
        epochs=2, batch_size=100, key=jax.random.PRNGKey(1), grads="manual", loop="scan", progress=False)
    result = fnn.train.evaluate(model, params, state, (xt[:1000], yt[:1000]), loss=softmax_cross_entropy)
    assert history["train_loss"][1] < history["train_loss"][0]
    # chance is 0.10; 3000 examples, 2 epochs. Measured 74.8% with keep_mask's dropout masks (above 75% with
    # the earlier bernoulli masks): 0.70 leaves room for the mask stream, a wrong backward stays far below it.
    assert result["accuracy"] > 0.70


@pytest.mark.parametrize("name, kwargs, layers", [
    ("mlp", {}, ["Flatten", "Dense", "BatchNorm", "Relu", "Dropout", "Dense", "BatchNorm", "Relu",
                 "Dropout", "Dense"]),
    ("cnn", {"flip": True, "max_shift": 2}, ["RandomFlip", "RandomTranslate", "Conv2D", "BatchNorm", "Relu",
                                             "MaxPool2D", "Conv2D", "BatchNorm", "Relu", "MaxPool2D",
                                             "Flatten", "Dense", "Relu", "Dropout", "Dense"]),
])
def test_model_layers(name, kwargs, layers):
    assert [layer.name for layer in fnn.models.MODELS[name](**kwargs).children] == layers
