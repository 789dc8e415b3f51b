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
                                             "Conv2D", "BatchNorm", "Relu", "Flatten", "Dense", "Relu", "Dropout",
                                             "Dense"]),
    ("cnn", {"top": 64, "hidden": 0, "dropout": 0.0}, ["Conv2D", "BatchNorm", "Relu", "MaxPool2D", "Conv2D",
                                                       "BatchNorm", "Relu", "MaxPool2D", "Conv2D", "BatchNorm",
                                                       "Relu", "GlobalAvgPool", "Dense"]),
    ("resnet", {}, ["stem", "stem_bn", "Relu", "block_1", "block_2", "block_3", "GlobalAvgPool", "head"]),
    ("vit", {"depth": 2}, ["RandomFlip", "RandomTranslate", "stem_1", "stem_1_bn", "Relu", "stem_2", "stem_2_bn",
                           "Relu", "patches", "tokens", "positions", "block_1", "block_2", "LayerNorm", "GlobalAvgPool",
                           "head"]),
    ("vit", {"depth": 2, "stem": "patch"}, ["RandomFlip", "RandomTranslate", "patches", "tokens", "positions",
                                            "block_1", "block_2", "LayerNorm", "GlobalAvgPool", "head"]),
    ("lstm", {}, ["rows", "rnn", "head"]),
    ("gru", {}, ["rows", "rnn", "head"]),
])
def test_model_layers(name, kwargs, layers):
    assert [layer.name for layer in fnn.models.MODELS[name](**kwargs).children] == layers


@pytest.mark.parametrize("name, shapes", [
    ("resnet", {"resnet/stem": (28, 28, 16), "resnet/block_1": (28, 28, 16), "resnet/block_2": (14, 14, 32),
                "resnet/block_3": (7, 7, 64), "resnet/GlobalAvgPool": (64,)}),
    ("vit", {"vit/patches": (7, 7, 64), "vit/tokens": (49, 64), "vit/block_4": (49, 64), "vit/GlobalAvgPool": (64,)}),
    ("lstm", {"lstm/rows": (28, 28), "lstm/rnn": (128,)}),
    ("gru", {"gru/rows": (28, 28), "gru/rnn": (128,)}),
])
def test_each_family_takes_the_same_images_and_gives_10_logits(name, shapes):
    text = fnn.summary(fnn.models.MODELS[name](), (28, 28, 1))
    rows = {line.split()[0]: line.split("  ")[1:] for line in text.splitlines()[2:-2]}
    for path, shape in shapes.items():
        assert str(shape) in " ".join(rows[path]), (path, rows[path])
    assert text.splitlines()[2].split()[:2] == [name, "(10,)"]


def test_every_family_has_a_recipe_whose_architecture_settings_its_builder_takes():
    import inspect
    for name, build in fnn.models.MODELS.items():
        parameters = inspect.signature(build).parameters
        assert set(fnn.models.ARCH_ARGS[name].values()) <= set(parameters), name
        assert name in fnn.models.RECIPES and name in fnn.models.VAL_SIZE
        assert all(p.annotation is not inspect.Parameter.empty for p in parameters.values()), name
        assert inspect.signature(build).return_annotation in ("Layer", fnn.Layer)
    assert fnn.models.default_val_size("mlp", 1500) == 125 and fnn.models.default_val_size("mlp", 60000) == 5000


@pytest.mark.parametrize("options, match", [
    ({"stem": "convs"}, r"vit: stem must be 'patch', or 'conv' with a patch that is a power of 2, got stem='convs'"),
    ({"stem": "conv", "patch": 7}, r"got stem='conv', patch=7"),
])
def test_vit_refuses_a_stem_it_cannot_build(options, match):
    with pytest.raises(ValueError, match=match):
        fnn.models.vit(**options)


def test_vit_conv_stem_makes_the_patch_stem_tokens():
    """Two stride-2 conv-BN-ReLU and a 1x1 conv turn 28x28 images into the same 49 tokens of width 32."""
    for stem in ("patch", "conv"):
        out_shape, _, _ = fnn.models.vit(width=32, depth=1, stem=stem).init(jax.random.PRNGKey(0), (28, 28, 1))
        assert out_shape == (10,)
    names = [p.rsplit("/", 1)[-1] for p in fnn.layer_paths(fnn.models.vit(stem="conv"))]
    assert {"stem_1", "stem_1_bn", "stem_2", "stem_2_bn", "patches"} <= set(names)
