"""fnn.inspect: trace against jax.grad layer by layer; attributions on a CNN built by hand so
that the right answer is known; the gradient-norm profile of 20-layer MLPs; the report for every
model family (MLP, CNN, residual CNN, LSTM, GRU, ViT), its gates and attention against numpy,
and `fnn inspect`'s refusals."""
import functools
import json
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import initializers as I
from fnn import inspect as fi
from fnn import layers as L

# one xdist worker runs this module, so its module-scoped fixtures are built once (make test: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("inspect")

LOSS = fnn.losses.softmax_cross_entropy


def _f64(model, in_shape, seed=0):
    _, params, state = model.init(jax.random.PRNGKey(seed), in_shape)
    return fnn.cast(params, jnp.float64), fnn.cast(state, jnp.float64)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _oracle_output_grads(model, params, state, x, y, key, train):
    """For a flat serial model: each child's output and dL/d(output) by jax.grad of the rest."""
    keys = [None if key is None else jax.random.fold_in(key, i) for i in range(len(model.children))]

    def rest(i, h):
        for j in range(i + 1, len(model.children)):
            h, _ = model.children[j].apply(params[j], state[j], h, key=keys[j], train=train)
        return LOSS(h, y)

    outputs, grads, h = [], [], x
    for i, child in enumerate(model.children):
        h, _ = child.apply(params[i], state[i], h, key=keys[i], train=train)
        outputs.append(h)
        with jax.numpy_dtype_promotion("standard"):
            grads.append(jax.grad(lambda h, i=i: rest(i, h))(h))
    return outputs, grads


CASES = [("mlp-train", fnn.models.mlp(hidden=(6, 5)), (4, 4, 1), True),
         ("mlp-eval", fnn.models.mlp(hidden=(6, 5)), (4, 4, 1), False),
         ("cnn-train", fnn.models.cnn(), (8, 8, 1), True),
         ("cnn-eval", fnn.models.cnn(), (8, 8, 1), False)]


@pytest.mark.parametrize("name, model, in_shape, train", CASES, ids=[c[0] for c in CASES])
def test_trace_equals_jax_grad_for_every_layer(name, model, in_shape, train):
    params, state = _f64(model, in_shape)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, *in_shape), jnp.float64)
    y = jnp.array([0, 3, 7, 9])
    key = jax.random.PRNGKey(5) if train else None
    t = fi.trace(model, params, state, x, y, LOSS, train=train, key=key)
    with jax.numpy_dtype_promotion("standard"):
        value, grads = jax.value_and_grad(
            lambda p: LOSS(model.apply(p, state, x, key=key, train=train)[0], y))(params)
        dx = jax.grad(lambda x: LOSS(model.apply(params, state, x, key=key, train=train)[0], y))(x)
    assert abs(float(t.loss) - float(value)) < 1e-12
    assert _rel(t.input_grad, dx) < 1e-9
    expected = fnn.tree_by_path(model, grads)
    for path, dparams in fnn.tree_by_path(model, t.grads).items():
        assert jax.tree.structure(dparams) == jax.tree.structure(expected[path]), path
        for a, b in zip(jax.tree.leaves(dparams), jax.tree.leaves(expected[path])):
            assert _rel(a, b) < 1e-9, path
        assert jax.tree.structure(t.param_grads[path]) == jax.tree.structure(dparams)
    outputs, out_grads = _oracle_output_grads(model, params, state, x, y, key, train)
    paths = list(fnn.layer_paths(model))[1:]
    assert list(t.outputs) == [model.name, *paths]
    for i, (path, out, grad) in enumerate(zip(paths, outputs, out_grads)):
        assert _rel(t.outputs[path], out) < 1e-12, path
        mine = t.output_grads[path]
        if i + 1 < len(paths) and paths[i + 1].rsplit("/", 1)[-1].startswith("MaxPool"):
            # a pooling window of tied values (all zeros after ReLU) sends its gradient to one of
            # them, fnn and XLA to different ones: compare where the value is not such a tie
            mine, grad = jnp.where(out != 0, mine, 0), jnp.where(out != 0, grad, 0)
        assert _rel(mine, grad) < 1e-9, path


def test_trace_opens_residual_and_parallel_and_keeps_frozen_whole():
    block = fnn.residual(fnn.serial(L.Dense(5), L.Tanh(), L.Dense(5)), name="block")
    branches = fnn.parallel(fnn.serial(L.Dense(3), L.Relu()), L.Dense(3), name="fan")
    model = fnn.serial(L.Dense(5), block, branches, L.Concat(), L.Frozen(fnn.serial(L.Dense(4), L.Tanh()),
                                                                           name="frozen"), name="net")
    params, state = _f64(model, (3,))
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 3), jnp.float64)
    y = jnp.array([0, 1, 2, 3, 0, 1])
    t = fi.trace(model, params, state, x, y, LOSS)
    with jax.numpy_dtype_promotion("standard"):
        grads = jax.grad(lambda p: LOSS(model.apply(p, state, x)[0], y))(params)
        # dL/d(block's output) by autodiff: perturb the output of child 1 of the top serial
        def from_block(h):
            h, _ = branches.apply(params[2], state[2], h)
            h, _ = model.children[3].apply((), (), h)
            return LOSS(model.children[4].apply(params[4], state[4], h)[0], y)
        h1 = L.Dense(5).apply(params[0], (), x)[0]
        block_out = block.apply(params[1], state[1], h1)[0]
        d_block = jax.grad(from_block)(block_out)
    for a, b in zip(jax.tree.leaves(t.grads), jax.tree.leaves(grads)):
        assert _rel(a, b) < 1e-9
    assert _rel(t.output_grads["net/block"], d_block) < 1e-9
    assert "net/block/serial/Dense_2" in t.outputs and "net/fan/serial/Relu" in t.outputs
    assert "net/frozen" in t.outputs and "net/frozen/Dense" not in t.outputs
    with pytest.raises(ValueError, match="traced as one unit"):
        fi.activation_maps(model, params, state, x, "frozen/Dense")


# ------------------------------------------------------------ a CNN whose answer is known
def _quadrant_cnn():
    """Channel 0 = ReLU(x) (bright), channel 1 = ReLU(-x) (dark); class 0 sums the bright
    channel over the top-left quadrant only, class 1 the dark channel over the same quadrant."""
    model = fnn.serial(L.Conv2D(2, (1, 1), use_bias=False), L.Relu(), L.Flatten(), L.Dense(2, use_bias=False),
                       name="quad")
    _, params, state = model.init(jax.random.PRNGKey(0), (8, 8, 1))
    conv = {"W": jnp.array([1.0, -1.0], jnp.float64).reshape(1, 1, 1, 2)}
    top_left = np.zeros((8, 8, 2, 2))
    top_left[:4, :4, 0, 0] = top_left[:4, :4, 1, 1] = 1.0
    dense = {"W": jnp.asarray(top_left.reshape(128, 2))}
    return model, (conv, (), (), dense), state


def _quadrant_images():
    """Bright in the top-left quadrant, dark (negative) content everywhere else."""
    u = jax.random.uniform(jax.random.PRNGKey(3), (3, 8, 8, 1), jnp.float64, 0.5, 1.0)
    tl = np.zeros((1, 8, 8, 1), bool)
    tl[:, :4, :4] = True
    return jnp.where(tl, u, -u), tl[0, :, :, 0]


@pytest.mark.parametrize("layer", ["Conv2D", "Relu"])
def test_grad_cam_lights_the_quadrant_the_class_reads(layer):
    model, params, state = _quadrant_cnn()
    x, tl = _quadrant_images()
    cam = np.asarray(fi.grad_cam(model, params, state, x, target=0, layer=layer))
    assert cam.shape == (3, 8, 8) and np.isclose(cam.max(), 1.0)
    assert (cam[:, tl] > 0.4).all() and (cam[:, ~tl] == 0).all()
    predicted = np.asarray(fi.grad_cam(model, params, state, x, layer=layer))   # class 0 wins
    np.testing.assert_array_equal(predicted, cam)


def test_occlusion_and_saliency_light_the_quadrant_only():
    model, params, state = _quadrant_cnn()
    x, tl = _quadrant_images()
    drop = np.asarray(fi.occlusion(model, params, state, x, target=0, patch=2))
    assert (drop[:, tl] > 0).all() and (drop[:, ~tl] == 0).all()
    sal = np.asarray(fi.saliency(model, params, state, x, target=0))[..., 0]
    assert (sal[:, tl] == 1).all() and (sal[:, ~tl] == 0).all()


def test_saliency_equals_jax_grad_of_the_class_score():
    model = fnn.models.cnn(batch_norm=False)
    params, state = _f64(model, (8, 8, 1))
    x = jax.random.normal(jax.random.PRNGKey(4), (3, 8, 8, 1), jnp.float64)
    target = jnp.array([2, 5, 9])
    with jax.numpy_dtype_promotion("standard"):
        expected = jax.grad(lambda x: model.apply(params, state, x)[0][jnp.arange(3), target].sum())(x)
    assert _rel(fi.saliency(model, params, state, x, target), expected) < 1e-9


def test_integrated_gradients_complete():
    """Completeness: sum(IG) = y_c(x) - y_c(x') to 1% of |y_c(x) - y_c(x')| with 64 midpoint steps
    (biases make the network non-homogeneous, so the path integral is not trivial)."""
    model = fnn.models.cnn(batch_norm=False)
    params, state = _f64(model, (8, 8, 1))
    params = jax.tree.map(lambda a: a + 0.05, params)            # non-zero biases
    x = jax.random.uniform(jax.random.PRNGKey(6), (3, 8, 8, 1), jnp.float64)
    ig = fi.integrated_gradients(model, params, state, x, steps=64, baseline=0.2)
    assert ig.values.shape == x.shape
    assert (np.abs(np.asarray(ig.gap)) < 0.01 * np.abs(np.asarray(ig.score_change))).all()
    rough = fi.integrated_gradients(model, params, state, x, steps=1, baseline=0.2)
    assert np.abs(np.asarray(rough.gap)).max() > np.abs(np.asarray(ig.gap)).max()


def test_bad_input_messages():
    model, params, state = _quadrant_cnn()
    x, _ = _quadrant_images()
    with pytest.raises(ValueError, match=r"no layer at path 'quad/Conv2d'; did you mean 'quad/Conv2D'\? "
                                         r"The paths are: quad, quad/Conv2D, quad/Relu"):
        fi.grad_cam(model, params, state, x, layer="quad/Conv2d")
    with pytest.raises(ValueError, match=r"grad_cam: layer 'quad/Dense' gives outputs of shape \(3, 2\), "
                                         r"without the spatial axes"):
        fi.grad_cam(model, params, state, x, layer="Dense")
    with pytest.raises(ValueError, match=r"target 2 is out of range for a model with 2 classes"):
        fi.saliency(model, params, state, x, target=2)
    with pytest.raises(ValueError, match=r"filters: layer 'quad/Dense' has no 2-D convolution kernel"):
        fi.filters(model, params, "Dense")


def test_filters_maps_and_stats():
    model, params, state = _quadrant_cnn()
    x, tl = _quadrant_images()
    assert fi.filters(model, params, "Conv2D").shape == (2, 1, 1, 1)
    maps = fi.activation_maps(model, params, state, x, "Relu")
    np.testing.assert_array_equal(maps[..., 0], jnp.maximum(x[..., 0], 0))
    stats = fi.activation_stats(model, params, state, x)
    assert stats["quad/Relu"].zeros == 0.5 and stats["quad/Relu"].saturated is None
    t = fnn.serial(L.Dense(3), L.Tanh(), name="t")
    _, p, s = t.init(jax.random.PRNGKey(0), (2,))
    p = ({"W": jnp.array([[100.0, 0.0, 0.1], [0.0, 0.0, 0.0]]), "b": jnp.zeros(3)}, ())
    tanh = fi.activation_stats(t, p, s, jnp.ones((4, 2)))["t/Tanh"]
    assert tanh.saturated == pytest.approx(1 / 3) and tanh.zeros == pytest.approx(1 / 3)


def test_activation_maximization_raises_the_unit():
    model, params, state = _quadrant_cnn()
    image, objective = fi.activation_maximization(model, params, state, 0, layer="Relu", in_shape=(8, 8, 1),
                                                  steps=30, l2=0.0)
    start = 0.5                                     # the mean pixel ascent starts from
    assert image.shape == (8, 8, 1) and objective > start and float(image.mean()) > 0.9


# ------------------------------------------------------------ gradient flow at depth 20
def _deep(kind, depth=20, width=32):
    blocks = {
        "sigmoid": lambda: [L.Dense(width), L.Sigmoid()],
        "relu_he": lambda: [L.Dense(width, W_init=I.he_uniform), L.Relu()],
        "residual": lambda: [fnn.residual(fnn.serial(L.Relu(), L.Dense(
            width, W_init=I.variance_scaling(2.0 / depth, "fan_in", "uniform"))))],
        "batchnorm": lambda: [L.Dense(width, W_init=I.he_uniform, use_bias=False), L.BatchNorm(), L.Relu()],
    }
    first = [L.Dense(width, W_init=I.he_uniform)] if kind == "residual" else []
    body = [layer for _ in range(depth - len(first)) for layer in blocks[kind]()]
    return fnn.serial(*first, *body, L.Dense(10), name=kind)


def _dense_norms(kind):
    model = _deep(kind)
    _, params, state = model.init(jax.random.PRNGKey(0), (16,))
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 16), jnp.float32)
    y = jax.random.randint(jax.random.PRNGKey(2), (64,), 0, 10)
    norms = fi.gradient_norms(model, params, state, x, y, LOSS, train=True)
    weights = [n.params for p, n in norms.items() if p.rsplit("/", 1)[-1].startswith("Dense")]
    assert len(weights) == 21
    return np.array(weights[:-1])                  # the 20 hidden layers, input side first


def test_gradient_norm_profile_at_depth_20():
    """Sigmoid's first-layer gradient is > 1e6 times smaller (relative to its last) than with
    ReLU + He; residual (branches scaled by 2/depth) keeps every layer within 5x of the others,
    BatchNorm within 50x (it grows toward the input, ~1.2x per layer: Yang et al. 2019)."""
    sigmoid, relu_he = _dense_norms("sigmoid"), _dense_norms("relu_he")
    assert sigmoid[0] / sigmoid[-1] < 1e-6 * (relu_he[0] / relu_he[-1])
    assert relu_he.max() / relu_he.min() < 10
    residual, batchnorm = _dense_norms("residual"), _dense_norms("batchnorm")
    assert residual.max() / residual.min() < 5
    assert batchnorm.max() / batchnorm.min() < 50


def test_plots_write_pngs(tmp_path):
    model, params, state = _quadrant_cnn()
    x, _ = _quadrant_images()
    cam = fi.grad_cam(model, params, state, x, layer="Relu")
    written = [
        fi.plot_grad_cam(x, cam, tmp_path / "cam.png"),
        fi.plot_attributions(x, {"Grad-CAM": cam, "saliency": fi.saliency(model, params, state, x)},
                             tmp_path / "attr.png"),
        fi.plot_filters(fi.filters(model, params, "Conv2D"), tmp_path / "filters.png"),
        fi.plot_activation_maps(fi.activation_maps(model, params, state, x, "Relu")[0], tmp_path / "maps.png"),
        fi.plot_gradient_norms({"a": [1.0, 0.1, 0.01]}, tmp_path / "norms.png"),
        fi.plot_activation_functions(tmp_path / "act.png"),
        fi.plot_images({"x": np.clip(np.asarray(x), 0, 1)}, tmp_path / "grid.png"),
        fi.plot_embedding(np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 3, tmp_path / "e.png"),
    ]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def test_plot_attention_writes_a_heat_map(tmp_path):
    weights = np.eye(4)[::-1] * 0.9 + 0.025
    path = fnn.inspect.plot_attention(weights, tmp_path / "att.png", queries=list("ABCD"), keys=list("abcd"))
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"^plot_attention: expected weights of shape \(T_q, T_k\)"):
        fnn.inspect.plot_attention(np.ones(3), tmp_path / "bad.png")



# ------------------------------------------------------------ the report, per model family
SIZE, DIM = 16, 8           # 16x16 images: a 4x4 patch grid, 16 rows read by the recurrent models
SECTIONS = ("Attributions", "Grad-CAM", "Saliency over time steps", "Gate activations", "Attention per head",
            "Attention rollout", "Filters", "Feature maps", "First-layer weights", "Layer statistics",
            "BatchNorm input and output")
BN = "BatchNorm input and output"          # served where the model has BatchNorm layers
SERVED = {
    "mlp": {"Attributions", "First-layer weights", "Layer statistics", BN},
    "cnn": {"Attributions", "Grad-CAM", "Filters", "Feature maps", "Layer statistics", BN},
    "resnet": {"Attributions", "Grad-CAM", "Filters", "Feature maps", "Layer statistics", BN},
    "lstm": {"Attributions", "Saliency over time steps", "Gate activations", "Layer statistics"},
    "gru": {"Attributions", "Saliency over time steps", "Gate activations", "Layer statistics"},
    "vit": {"Attributions", "Attention per head", "Attention rollout", "Filters", "Feature maps",
            "Layer statistics"},
}
# layers the structure picks, and reasons, that each page must name
NAMED = {
    "mlp": ["Grad-CAM: no convolutional layer in this model", "convnet/Dense_1"],
    "cnn": ["At <code>cnn/Relu_2</code>", "Of <code>cnn/Conv2D_1</code>", "Of <code>cnn/Relu_1</code>"],
    "resnet": ["At <code>resnet/Relu_2</code>", "Of <code>resnet/Conv2D</code>", "Of <code>resnet/Relu_1</code>"],
    "lstm": ["<code>lstm/LSTM</code>", "First-layer weights: the first layer with weights is not a dense layer"],
    "gru": ["<code>gru/GRU</code>", "Filters: no convolutional layer in this model"],
    "vit": ["Grad-CAM: the last feature map (net/stem) comes before the attention layers",
            "Of <code>net/stem</code>"],
}


def _family(kind):
    """Tiny versions of the reference structures; names that would mislead a name-based choice
    (an MLP called "convnet", a ViT whose patch convolution is "stem")."""
    conv = lambda k: L.Conv2D(k, (3, 3), padding="SAME")                     # noqa: E731
    t = SIZE // 4
    return {
        "mlp": lambda: fnn.serial(L.Flatten(), L.Dense(12), L.BatchNorm(), L.Relu(), L.Dropout(0.2), L.Dense(10),
                                  name="convnet"),
        "cnn": lambda: fnn.serial(L.Conv2D(4, (3, 3)), L.BatchNorm(), L.Relu(), L.MaxPool2D((2, 2)),
                                  L.Conv2D(6, (3, 3)), L.Relu(), L.MaxPool2D((2, 2)), L.Flatten(), L.Dense(10),
                                  name="cnn"),
        "resnet": lambda: fnn.serial(conv(4), L.BatchNorm(), L.Relu(), fnn.residual(fnn.serial(
            conv(4), L.BatchNorm(), L.Relu(), conv(4), L.BatchNorm())), L.Relu(), L.MaxPool2D((2, 2)),
            L.GlobalAvgPool(), L.Dense(10), name="resnet"),
        "lstm": lambda: fnn.serial(L.Reshape((SIZE, SIZE)), L.LSTM(6), L.Dense(10), name="lstm"),
        "gru": lambda: fnn.serial(L.Reshape((SIZE, SIZE)), L.GRU(6), L.Dense(10), name="gru"),
        "vit": lambda: fnn.serial(L.RandomFlip(), L.RandomTranslate(1), L.Conv2D(DIM, 4, stride=4, padding="VALID",
                                  name="stem"), L.Reshape((t * t, DIM)), L.LearnedPositions(),
                                  *[L.TransformerEncoderBlock(DIM, 2, 2 * DIM, dropout=0.0) for _ in range(2)],
                                  L.LayerNorm(), L.GlobalAvgPool(), L.Dense(10), name="net"),
    }[kind]()


def _images():
    return jax.random.uniform(jax.random.PRNGKey(1), (2, SIZE, SIZE, 1), jnp.float32), np.array([3, 4])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """kind -> (folder, page): one report per family, written once for the module."""
    done = {}

    def make(kind):
        if kind not in done:
            model = _family(kind)
            _, params, state = model.init(jax.random.PRNGKey(0), (SIZE, SIZE, 1))
            out = tmp_path_factory.mktemp(kind)
            x, labels = _images()
            index = fi.write_report(model, params, state, x, labels, out, steps=2, units=8,
                                    class_names=[f"c{i}" for i in range(10)])
            done[kind] = (out, index.read_text())
        return done[kind]
    return make


def _sections(page):
    return dict(re.findall(r'<h2 id="s\d+">(.*?)</h2>\n(.*?)(?=\n<h2|\n$)', page, re.S))


@pytest.mark.parametrize("kind", sorted(SERVED))
def test_report_shows_what_the_structure_serves(kind, report):
    out, page = report(kind)
    sections = _sections(page)
    assert tuple(sections) == SECTIONS
    for title, body in sections.items():
        reasons = re.findall(r'<p class="na">(.*?)</p>', body)
        if title in SERVED[kind]:
            assert not reasons, (title, reasons)
            for src in re.findall(r'src="([^"]+)"', body):
                assert (out / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
            assert re.search(r'src="|<table>', body), title
        else:
            assert len(reasons) == 1 and reasons[0].startswith(f"{title}: ") and "\n" not in reasons[0], title
    for text in NAMED[kind]:
        if isinstance(text, str):
            assert text in page, text
    rows = re.findall(r"<tr><td><code>(.*?)</code>", sections["Layer statistics"])
    assert rows and all(not r.startswith(rows[0] + "/") for r in rows[1:])       # leaves only


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_attributions_show_kernel_shap_and_its_rank_correlations(kind, report):
    """A KernelSHAP column beside occlusion (16x16 images: 16 patches of 4x4), and per image Spearman's
    rho of KernelSHAP with occlusion and IG pooled to the same patches, each in [-1, 1]."""
    out, page = report(kind)
    body = _sections(page)["Attributions"]
    maps = re.search(r"<p>For the predicted class: (.*?) \(gradients", body).group(1).split("), ")
    assert maps[-2:] == ["occlusion (4x4, stride 2", "KernelSHAP (16 patches)"], maps
    width = int.from_bytes((out / "image_0.png").read_bytes()[16:20], "big")     # the PNG header's width
    assert width > 2.3 * 110 * (len(maps) + 1) * 0.75, (width, maps)             # a column per map (plots.py)
    assert "over 16 patches of 4x4 pixels" in body and "pooled to the same 16 patches" in body
    rows = re.findall(r"<tr><td>(\d): true [^<]*</td><td>(-?[\d.]+)</td><td>(-?[\d.]+)</td></tr>", body)
    assert [r[0] for r in rows] == ["0", "1"] and all(-1 <= float(v) <= 1 for r in rows for v in r[1:]), rows
    assert re.search(r"Mean over the images: rho = -?[\d.]+ with occlusion, -?[\d.]+ with IG", body)


def test_batchnorm_histograms_pair_each_batchnorm_with_its_input():
    """From the report's jitted trace (its dict comes back sorted by path, not in forward order):
    the resnet's three BatchNorms, each with the output of the convolution before it."""
    from fnn.inspect._batchnorm import batchnorm_inputs_outputs
    from fnn.inspect.attribution import class_trace
    model = _family("resnet")
    _, params, state = model.init(jax.random.PRNGKey(0), (SIZE, SIZE, 1))
    x, _ = _images()
    outputs = class_trace(model, params, state, x)[0].outputs
    pairs = batchnorm_inputs_outputs(model, params, state, outputs)
    block = "resnet/residual/serial/"
    convs = {"resnet/BatchNorm": "resnet/Conv2D", block + "BatchNorm_1": block + "Conv2D_1",
             block + "BatchNorm_2": block + "Conv2D_2"}
    assert set(pairs) == set(convs), sorted(outputs)
    for bn, conv in convs.items():
        np.testing.assert_array_equal(pairs[bn][0], outputs[conv])
        np.testing.assert_array_equal(pairs[bn][1], outputs[bn])


def test_report_images_per_family(report):
    out, _ = report("mlp")
    assert {"image_0.png", "image_1.png", "dense_weights.png", "batchnorm_histograms.png", "index.html"} == {
        p.name for p in out.iterdir()}
    out, _ = report("vit")
    assert {"attention_heads.png", "rollout.png", "filters.png"} <= {p.name for p in out.iterdir()}
    assert "grad_cam.png" not in {p.name for p in out.iterdir()}
    out, _ = report("lstm")
    assert {"gates.png", "time_steps.png"} <= {p.name for p in out.iterdir()}


def test_describe_reads_structure_not_names():
    x, _ = _images()
    kinds = {}
    for kind in SERVED:
        model = _family(kind)
        _, params, state = model.init(jax.random.PRNGKey(0), (SIZE, SIZE, 1))
        kinds[kind] = fi.describe(model, params, state, x)
    assert {k: s.kind for k, s in kinds.items()} == {
        "mlp": "dense", "cnn": "convolutional", "resnet": "convolutional", "lstm": "recurrent",
        "gru": "recurrent", "vit": "attention"}
    assert kinds["vit"].grid == (4, 4) and kinds["lstm"].recurrent == {"lstm/LSTM": 4}
    assert kinds["gru"].recurrent == {"gru/GRU": 3} and kinds["mlp"].dense == "convnet/Dense_1"


# ------------------------------------------------------------ gates and attention against numpy
def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _numpy_gates(kind, p, x):
    """The LSTM / GRU equations of fnn.layers' docstrings, step by step in numpy."""
    W_x, W_h, b_x, b_h = (np.asarray(p[k]) for k in ("W_x", "W_h", "b_x", "b_h"))
    H = W_h.shape[0]
    h, c, out = np.zeros((x.shape[0], H)), np.zeros((x.shape[0], H)), []
    for t in range(x.shape[1]):
        a_x, a_h = x[:, t] @ W_x + b_x, h @ W_h + b_h
        if kind == "lstm":
            a = a_x + a_h
            i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out.append({"input": i, "forget": f, "candidate": g, "output": o})
        else:
            r, z = _sigmoid(a_x[:, :H] + a_h[:, :H]), _sigmoid(a_x[:, H:2 * H] + a_h[:, H:2 * H])
            n = np.tanh(a_x[:, 2 * H:] + r * a_h[:, 2 * H:])
            h = (1 - z) * n + z * h
            out.append({"reset": r, "update": z, "candidate": n})
    return {k: np.stack([o[k] for o in out], axis=1) for k in out[0]}


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gate_activations_equal_the_equations_in_numpy(kind):
    model = fnn.serial(L.Dense(4), {"lstm": L.LSTM, "gru": L.GRU}[kind](3), L.Dense(2), name="seq")
    params, state = _f64(model, (5, 2))
    x = jax.random.normal(jax.random.PRNGKey(7), (2, 5, 2), jnp.float64)
    gates = fi.gate_activations(model, params, state, x)
    h_in = np.asarray(x) @ np.asarray(params[0]["W"]) + np.asarray(params[0]["b"])
    expected = _numpy_gates(kind, params[1], h_in)
    assert list(gates) == list(expected)
    for name in expected:
        assert gates[name].shape == (2, 5, 3)
        np.testing.assert_allclose(gates[name], expected[name], rtol=1e-12, atol=1e-14)


def test_gate_activations_refuse_a_model_without_gates():
    model = fnn.serial(L.SimpleRNN(3), L.Dense(2), name="rnn")
    params, state = _f64(model, (5, 2))
    with pytest.raises(ValueError, match=r"^gate_activations: 'rnn/SimpleRNN' is a simple RNN, which has no gates$"):
        fi.gate_activations(model, params, state, jnp.ones((1, 5, 2)))


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_attention_weights_of_a_block_equal_numpy():
    """The weights read from inside a transformer block (a traced unit) equal softmax(Q K^T / sqrt(D))
    of the block's LayerNorm'ed input, computed in numpy."""
    model = fnn.serial(L.Dense(4), L.TransformerEncoderBlock(4, 2, 6, dropout=0.0), name="enc")
    params, state = _f64(model, (5, 3))
    params = jax.tree.map(lambda a: a + 0.1 * jnp.cos(jnp.arange(a.size).reshape(a.shape)), params)
    x = jax.random.normal(jax.random.PRNGKey(8), (2, 5, 3), jnp.float64)
    weights = fi.attention_weights(model, params, state, x)
    assert list(weights) == ["enc/TransformerEncoderBlock/MultiHeadAttention"]
    h = np.asarray(x) @ np.asarray(params[0]["W"]) + np.asarray(params[0]["b"])
    norm, att = (jax.tree.map(np.asarray, p) for p in params[1][:2])
    mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    a = (h - mean) / np.sqrt(var + 1e-5) * norm["gamma"] + norm["beta"]
    q, k = ((a @ att[f"W_{n}"] + att[f"b_{n}"]).reshape(2, 5, 2, 2) for n in "qk")
    expected = _softmax(np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(2))
    np.testing.assert_allclose(weights["enc/TransformerEncoderBlock/MultiHeadAttention"], expected, rtol=1e-10)


def test_attention_rollout_equals_numpy():
    rng = np.random.default_rng(0)
    layers = [_softmax(rng.normal(size=(2, 3, 4, 4)) * 2) for _ in range(3)]
    expected = []
    for b in range(2):
        r = np.eye(4)
        for p in layers:
            a = 0.5 * np.eye(4) + 0.5 * p[b].mean(axis=0)
            r = (a / a.sum(axis=1, keepdims=True)) @ r
        expected.append(r)
    got = fi.attention_rollout([jnp.asarray(p) for p in layers])
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(got).sum(axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected self-attention weights \(B, heads, T, T\)"):
        fi.attention_rollout([jnp.ones((1, 2, 3, 4))])


# ------------------------------------------------------------ refusals leave nothing behind
@functools.cache
def _mlp_setup():
    model = _family("mlp")
    _, params, state = model.init(jax.random.PRNGKey(0), (SIZE, SIZE, 1))
    return model, params, state


def test_write_report_refuses_before_making_the_folder(tmp_path, monkeypatch):
    from fnn._optional import MissingDependency
    model, params, state = _mlp_setup()
    x, labels = _images()
    out = tmp_path / "inspect"
    with pytest.raises(ValueError, match=r"no layer at path 'Conv9'"):
        fi.write_report(model, params, state, x, labels, out, cam_layer="Conv9")
    with pytest.raises(ValueError, match=r"^Grad-CAM: layer 'convnet/Dense_1' gives outputs of shape \(1, 12\), "
                                         r"without the spatial axes \(B, h, w, K\) it needs; layers with them: none$"):
        fi.write_report(model, params, state, x, labels, out, cam_layer="Dense_1")
    with pytest.raises(ValueError, match=r"^write_report: expected images \(B, H, W, C\) and labels \(B,\)"):
        fi.write_report(model, params, state, x[0], labels, out)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependency) as err:
        fi.write_report(model, params, state, x, labels, out)
    assert "\n" not in str(err.value) and "pip install -e '.[plot]'" in str(err.value)
    assert not out.exists()


def test_a_section_that_fails_is_one_line_and_a_failed_report_leaves_nothing(tmp_path, monkeypatch):
    from fnn.inspect import _sections, plots
    model, params, state = _mlp_setup()
    x, labels = _images()

    def odd(context):
        raise ValueError("a layout nobody foresaw\nsecond line")
    monkeypatch.setitem(_sections.SECTIONS, "First-layer weights", odd)
    page = fi.write_report(model, params, state, x, labels, tmp_path / "page", steps=1).read_text()
    assert '<p class="na">First-layer weights: not drawn for this model (ValueError: a layout nobody ' \
           'foresaw)</p>' in page

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(plots, "plot_attributions", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        fi.write_report(model, params, state, x, labels, tmp_path / "new" / "inspect", steps=1)
    assert not (tmp_path / "new").exists()


def test_gate_activations_inside_a_bidirectional_layer():
    """The forward direction's gates, reached through the Bidirectional unit's cache."""
    model = fnn.serial(L.Bidirectional(L.LSTM(3)), L.Dense(2), name="bi")
    params, state = _f64(model, (5, 2))
    x = jax.random.normal(jax.random.PRNGKey(9), (2, 5, 2), jnp.float64)
    gates = fi.gate_activations(model, params, state, x, layer="Bidirectional/forward")
    expected = _numpy_gates("lstm", params[0]["forward"], np.asarray(x))
    for name in expected:
        np.testing.assert_allclose(gates[name], expected[name], rtol=1e-12, atol=1e-14)


def _run_dir(tmp_path, model):
    """A run directory with untrained weights, saved as `fnn train` saves them."""
    from fnn import checkpoint, runs
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": model, "dataset": "fashion-mnist"}))
    setup = runs.setup(runs.read_config(run), 64)
    checkpoint.save_training(run / "checkpoint.safetensors", setup.params, setup.state,
                             setup.optimizer.init(setup.params), 1)
    return run


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").exists(), reason="needs Fashion-MNIST")
def test_inspect_command_on_an_mlp_run(tmp_path, capsys, monkeypatch):
    """`fnn inspect RUN` on the MLP run a newcomer has: the page; each refusal is one line, exit 2,
    no inspect/ folder left behind."""
    from fnn.cli import main
    run = _run_dir(tmp_path, "mlp")
    for argv, said in ((["--layer", "Dense_1"], "without the spatial axes"), (["--layer", "Nope"], "no layer at path"),
                       (["--images", "0"], "--images must be at least 1")):
        assert main(["inspect", str(run), "--images", "2", *argv]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1 and err.count("inspect") == 1, err
        assert not (run / "inspect").exists()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "matplotlib", None)
        patch.setitem(sys.modules, "matplotlib.pyplot", None)
        assert main(["inspect", str(run), "--images", "2"]) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "[plot]" in err and err.count("\n") == 1 and not (run / "inspect").exists()
    assert main(["inspect", str(run), "--images", "2"]) == 0
    page = (run / "inspect" / "index.html").read_text()
    assert "mlp/Dense_1" in page and "Grad-CAM: no convolutional layer in this model" in page
