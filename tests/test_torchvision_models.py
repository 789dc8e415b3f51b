"""fnn's torchvision builders against torchvision itself (the oracle), in float64: random weights
(eval mode, random BatchNorm statistics) converted by `fnn.interop.load_torchvision` give the same
logits and, through fnn's hand-derived backward, the same input gradient as torch's autograd."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.core import tree_size
from fnn.paths import tree_by_path

torch = pytest.importorskip("torch")
from _torchvision import import_torchvision  # noqa: E402

torchvision = import_torchvision()

TOLERANCE = 1e-9
PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "vgg11": 132_863_336, "vgg16": 138_357_544,
          "alexnet": 61_100_840}


def _relative(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _torch_model(name: str, seed: int = 0):
    """torchvision's model in float64 and eval mode, with random BatchNorm affine maps and statistics."""
    torch.manual_seed(seed)
    with torch.device("meta"):                   # no init of 138M weights by torchvision's rules: ours is cheaper
        model = getattr(torchvision.models, name)(weights=None)
    model = model.to_empty(device="cpu").double().eval()
    with torch.no_grad():
        for p in model.parameters():             # He-scaled normals (biases 0.1): activations keep their scale
            p.normal_(0, (2 / p[0].numel()) ** 0.5 if p.ndim > 1 else 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
    return model


def _torch_oracle(model, x_nhwc, dy):
    """torch's logits and d(sum(logits * dy))/dx, as NHWC NumPy arrays."""
    x = torch.tensor(x_nhwc.transpose(0, 3, 1, 2), requires_grad=True)
    y = model(x)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), x.grad.numpy().transpose(0, 2, 3, 1)


def _fnn_run(name, params, state, x, dy):
    model = getattr(fnn.models, name)()
    y, _, cache = model.forward(params, state, jnp.asarray(x))
    dparams, dx = model.backward(params, cache, jnp.asarray(dy))
    return model, np.asarray(y), np.asarray(dx), dparams


# one input size per family: the ResNets (and the VGGs) then share their compiled shapes
@pytest.mark.parametrize("name,size", [("resnet18", 32), ("resnet34", 32), ("alexnet", 64), ("vgg11", 32)])
def test_same_logits_and_input_gradient_as_torchvision(name, size):
    rng = np.random.default_rng(1)
    x, dy = rng.normal(size=(2, size, size, 3)), rng.normal(size=(2, 1000))
    model_t = _torch_model(name)
    y_t, dx_t = _torch_oracle(model_t, x, dy)
    params, state = fnn.interop.load_torchvision(name, {k: v.numpy() for k, v in model_t.state_dict().items()})
    assert tree_size(params) == PARAMS[name]
    model, y, dx, dparams = _fnn_run(name, params, state, x, dy)
    assert y.dtype == np.float64 and _relative(y, y_t) < TOLERANCE
    assert _relative(dx, dx_t) < TOLERANCE
    if name == "resnet18":        # and the weight gradients of a few layers, against torch's .grad
        grads = tree_by_path(model, dparams)
        pairs = [("conv1", "W", (2, 3, 1, 0)), ("layer2/0/downsample/0", "W", (2, 3, 1, 0)),
                 ("layer4/1/bn2", "gamma", (0,)), ("fc", "W", (1, 0))]
        torch_grads = dict(model_t.named_parameters())
        for path, key, axes in pairs:
            torch_name = path.replace("/", ".") + (".bias" if key == "b" else ".weight")
            want = torch_grads[torch_name].grad.numpy().transpose(axes)
            assert _relative(grads[f"resnet18/{path}"][key], want) < TOLERANCE, path


def test_vgg16_same_logits_and_input_gradient_on_a_small_input():
    """138M parameters (1.1 GB in float64): torch's weights need no gradients here, and go before fnn runs."""
    rng = np.random.default_rng(2)
    x, dy = rng.normal(size=(2, 32, 32, 3)), rng.normal(size=(2, 1000))
    model_t = _torch_model("vgg16")
    model_t.requires_grad_(False)
    y_t, dx_t = _torch_oracle(model_t, x, dy)
    params, state = fnn.interop.load_torchvision("vgg16", {k: v.numpy() for k, v in model_t.state_dict().items()})
    del model_t
    _, y, dx, _ = _fnn_run("vgg16", params, state, x, dy)
    assert _relative(y, y_t) < TOLERANCE and _relative(dx, dx_t) < TOLERANCE


def test_layer_paths_follow_torchvision_module_names():
    for name in PARAMS:
        model = getattr(fnn.models, name)()
        shapes = jax.eval_shape(lambda k, m=model: m.init(k, (224, 224, 3))[1], jax.random.PRNGKey(0))
        ours = {path.split("/", 1)[1].replace("/", ".") for path, sub in tree_by_path(model, shapes).items()
                if jax.tree.leaves(sub)}
        with torch.device("meta"):                                   # names and shapes, no weights
            theirs = {k.rsplit(".", 1)[0] for k, _ in getattr(torchvision.models, name)().named_parameters()}
        assert ours == theirs, name
        assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes)) == PARAMS[name]


def test_builders_refuse_bad_arguments():
    with pytest.raises(ValueError, match=r"resnet: depth must be one of \[18, 34\], got 50"):
        fnn.models.resnet(50)
    with pytest.raises(ValueError, match="vgg: depth must be one of"):
        fnn.models.vgg(13)
    with pytest.raises(ValueError, match="alexnet: num_classes must be a positive int, got 0"):
        fnn.models.alexnet(0)


@pytest.mark.parametrize("name", ["resnet18", "vgg16"])
def test_fnn_summary_prints_torchvisions_parameter_count(name, capsys):
    from fnn.cli import main
    assert main(["summary", "--model", name], prog="fnn") == 0
    out = capsys.readouterr().out
    assert f"Total params: {PARAMS[name]:,}   input: (224, 224, 3)" in out
    assert f"{name}/features/0" in out or f"{name}/layer1/0/conv1" in out
