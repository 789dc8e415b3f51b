"""EfficientNet-B0 and ViT-B/16 against torchvision (the oracle) in float64: random weights (eval
mode, random BatchNorm statistics, LayerNorm affines, class token and head) converted by
`fnn.interop.load_torchvision` give the same logits and, through fnn's hand-derived backward, the
same input gradient (and parameter gradients) as torch's autograd. Also: parameter counts, the
depthwise convolution EfficientNet uses, and the converters' named errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.core import tree_size
from fnn.interop import _efficientnet, _vit_b_16
from fnn.layers import Conv2D
from fnn.paths import tree_by_path

torch = pytest.importorskip("torch")
from _torchvision import import_torchvision  # noqa: E402

torchvision = import_torchvision()

TOLERANCE = 1e-9
PARAMS = {"efficientnet_b0": 5_288_548, "vit_b_16": 86_567_656}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """torch on one thread: beside JAX on a shared CPU, two threads spin (EfficientNet's pass: 12 s vs 0.6 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _relative(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _randomized(model):
    """`model` in float64 and eval mode with random norm affines and statistics, class token, attention
    biases and head (torchvision starts some of them at 0 or 1, which would hide a transposition)."""
    model = model.double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.1)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, torch.nn.MultiheadAttention):
                m.in_proj_bias.normal_(0, 0.1), m.out_proj.bias.normal_(0, 0.1)
        if hasattr(model, "class_token"):
            model.class_token.normal_(), model.heads.head.weight.normal_(0, 0.05), model.heads.head.bias.normal_()
    return model


def _compare(model_t, model, image_size, batch, grads):
    """torch's and fnn's logits, input gradient and the parameter gradients named in `grads`
    ({torch name: fnn layer path, key, torch-to-fnn transpose})."""
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(batch, image_size, image_size, 3)), rng.normal(size=(batch, 1000))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    yt = model_t(xt)
    yt.backward(torch.tensor(dy))
    params, state = fnn.interop.load_torchvision(model.name, model_t.state_dict())

    @jax.jit
    def run(params, state, x, dy):
        y, _, cache = model.forward(params, state, x)
        return y, *model.backward(params, cache, dy)

    y, dparams, dx = run(params, state, jnp.asarray(x), jnp.asarray(dy))
    assert y.dtype == jnp.float64
    assert _relative(y, yt.detach().numpy()) < TOLERANCE
    assert _relative(dx, xt.grad.numpy().transpose(0, 2, 3, 1)) < TOLERANCE
    by_path, named = tree_by_path(model, dparams), dict(model_t.named_parameters())
    for torch_name, (path, key, to_fnn) in grads.items():
        want = to_fnn(named[torch_name].grad.numpy())
        assert _relative(by_path[f"{model.name}/{path}"][key], want) < TOLERANCE, torch_name


def test_efficientnet_b0_same_logits_and_gradients_as_torchvision():
    torch.manual_seed(0)
    conv = lambda w: w.transpose(2, 3, 1, 0)           # noqa: E731
    _compare(_randomized(torchvision.models.efficientnet_b0()), fnn.models.efficientnet_b0(), 32, 2, {
        "features.0.0.weight": ("features/0/0", "W", conv),
        "features.2.1.block.1.0.weight": ("features/2/1/block/1/0", "W", conv),           # depthwise
        "features.2.1.block.2.fc1.weight": ("features/2/1/block/2/parallel/scale/fc1", "W", conv),   # SE
        "features.7.0.block.3.1.weight": ("features/7/0/block/3/1", "gamma", lambda w: w),
        "classifier.1.weight": ("classifier/1", "W", lambda w: w.T)})


def test_vit_b_16_same_logits_and_gradients_as_torchvision():
    torch.manual_seed(0)                               # all 12 layers; 32x32 images: 4 patches + the class token
    _compare(_randomized(torchvision.models.vit_b_16(image_size=32)), fnn.models.vit_b_16(image_size=32), 32, 2, {
        "class_token": ("class_token", "W", lambda w: w.reshape(-1)),
        "encoder.pos_embedding": ("encoder/pos_embedding", "W", lambda w: w[0]),
        "conv_proj.weight": ("conv_proj", "W", lambda w: w.transpose(2, 3, 1, 0)),
        "encoder.layers.encoder_layer_0.self_attention.out_proj.weight":
            ("encoder/layers/encoder_layer_0/MultiHeadAttention", "W_o", lambda w: w.T),
        "encoder.layers.encoder_layer_11.mlp.3.weight": ("encoder/layers/encoder_layer_11/mlp/Dense_2", "W",
                                                         lambda w: w.T)})


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts_equal_torchvision(name):
    builder = fnn.interop.torchvision.BUILDERS[name]
    params = jax.eval_shape(lambda k: builder().init(k, (224, 224, 3))[1], jax.random.PRNGKey(0))
    with torch.device("meta"):                          # shapes only: no memory, no init
        count = sum(p.numel() for p in getattr(torchvision.models, name)().parameters())
    assert tree_size(params) == count == PARAMS[name]


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_equals_torch(stride):
    rng = np.random.default_rng(stride)
    x, n_out = rng.normal(size=(2, 7, 7, 6)), -(-7 // stride)
    layer = Conv2D(12, 3, stride, 1, groups=6)          # channel multiplier 2
    _, params, _ = layer.init(jax.random.PRNGKey(0), (7, 7, 6))
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    dy = rng.normal(size=(2, n_out, n_out, 12))
    y, _, cache = layer.forward(params, (), jnp.asarray(x))
    dparams, dx = layer.backward(params, cache, jnp.asarray(dy))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    wt = torch.tensor(np.asarray(params["W"]).transpose(3, 2, 0, 1), requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, torch.tensor(np.asarray(params["b"])), stride, 1, groups=6)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    assert _relative(y, yt.detach().numpy().transpose(0, 2, 3, 1)) < TOLERANCE
    assert _relative(dx, xt.grad.numpy().transpose(0, 2, 3, 1)) < TOLERANCE
    assert _relative(dparams["W"], wt.grad.numpy().transpose(2, 3, 1, 0)) < TOLERANCE


def test_converters_name_missing_and_extra_tensors():
    with pytest.raises(KeyError, match=r"load_torchvision\('efficientnet_b0'\): the state_dict has no 'classifier.1"):
        _efficientnet.convert({"features.0.0.weight": np.zeros((32, 3, 3, 3))})
    with pytest.raises(KeyError, match=r"load_torchvision\('vit_b_16'\): the state_dict has no 'conv_proj.weight'"):
        _vit_b_16.convert({"class_token": np.zeros((1, 1, 8))})
    small = torchvision.models.VisionTransformer(32, 16, 1, 2, 8, 12, num_classes=5).state_dict()
    params, _ = _vit_b_16.convert(small, num_heads=2)
    assert tree_size(params) == sum(int(np.prod(v.shape)) for v in small.values())
    with pytest.raises(ValueError, match=r"vit_b_16'\): the state_dict has tensors .* no place for: extra.weight"):
        _vit_b_16.convert({**small, "extra.weight": np.zeros(3)}, num_heads=2)


def test_torchvision_names_map_to_fnn_paths():
    assert _efficientnet.fnn_name("features.1.0.block.1.fc2.bias") == "features.1.0.block.1.parallel.scale.fc2.bias"
    assert _vit_b_16.torch_prefix("vit_b_16/encoder/layers/encoder_layer_3/mlp/Dense_2") == \
        "encoder.layers.encoder_layer_3.mlp.3"
    assert _vit_b_16.torch_prefix("vit_b_16/encoder/ln") == "encoder.ln"
