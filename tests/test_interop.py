"""fnn.interop: PyTorch weights in and out; torch as the oracle (outputs agree to 1e-5 in float32)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import interop
from fnn import layers as L

torch = pytest.importorskip("torch")


def _numpy(state_dict):
    return {k: v.detach().numpy() for k, v in state_dict.items()}


def _round_trip(module, to_torch, params):
    back = to_torch(*params) if isinstance(params, tuple) else to_torch(params)
    for k, v in module.state_dict().items():
        np.testing.assert_array_equal(np.asarray(back[k]), v.numpy(), err_msg=k)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in back.items()})


def test_linear():
    torch.manual_seed(0)
    module = torch.nn.Linear(5, 3)
    params = interop.linear_from_torch(_numpy(module.state_dict()))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    y, _ = L.Dense(3).apply(params, (), jnp.asarray(x))
    np.testing.assert_allclose(y, module(torch.from_numpy(x)).detach().numpy(), atol=1e-5)
    _round_trip(module, interop.linear_to_torch, params)


def test_conv2d():
    torch.manual_seed(0)
    module = torch.nn.Conv2d(3, 4, (3, 2), padding="valid")
    params = interop.conv2d_from_torch(_numpy(module.state_dict()))
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 6)).astype(np.float32)      # NCHW
    y, _ = L.Conv2D(4, (3, 2), padding="VALID").apply(params, (), jnp.asarray(x.transpose(0, 2, 3, 1)))
    expected = module(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    _round_trip(module, interop.conv2d_to_torch, params)


def test_batchnorm2d():
    torch.manual_seed(0)
    module = torch.nn.BatchNorm2d(3)
    module.train()
    module(torch.randn(8, 3, 4, 4) * 2 + 1)                 # move the running statistics
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-1, 1)
    module.eval()
    params, state = interop.batchnorm_from_torch(_numpy(module.state_dict()))
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 4)).astype(np.float32)
    y, _ = L.BatchNorm().apply(params, state, jnp.asarray(x.transpose(0, 2, 3, 1)), train=False)
    expected = module(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    back = interop.batchnorm_to_torch(params, state)
    for k in ("weight", "bias", "running_mean", "running_var"):
        np.testing.assert_array_equal(back[k], module.state_dict()[k].numpy())


def test_embedding():
    torch.manual_seed(0)
    module = torch.nn.Embedding(10, 4)
    params = interop.embedding_from_torch(_numpy(module.state_dict()))
    ids = np.array([[1, 9, 0], [3, 3, 2]])
    y, _ = L.Embedding(10, 4).apply(params, (), jnp.asarray(ids))
    np.testing.assert_allclose(y, module(torch.from_numpy(ids)).detach().numpy(), atol=1e-6)
    _round_trip(module, interop.embedding_to_torch, params)


@pytest.mark.parametrize("kind, make", [("LSTM", L.LSTM), ("GRU", L.GRU), ("RNN", L.SimpleRNN)])
def test_rnn_stack_bidirectional(kind, make):
    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    params = interop.rnn_from_torch(_numpy(module.state_dict()))
    model = fnn.serial(L.Bidirectional(make(4, return_sequences=True)), L.Bidirectional(make(4, return_sequences=True)))
    _, _, state = model.init(jax.random.PRNGKey(0), (5, 3))
    x = np.random.default_rng(3).normal(size=(2, 5, 3)).astype(np.float32)
    y, _ = model.apply(params, state, jnp.asarray(x))
    np.testing.assert_allclose(y, module(torch.from_numpy(x))[0].detach().numpy(), atol=1e-5)
    _round_trip(module, interop.rnn_to_torch, (params,))


def test_missing_keys_and_projections_are_errors():
    with pytest.raises(KeyError, match="linear_from_torch: expected a state_dict with 'weight'"):
        interop.linear_from_torch({"bias": np.zeros(3)})
    with pytest.raises(ValueError, match="rnn_from_torch: LSTM with proj_size is not supported"):
        interop.rnn_from_torch(_numpy(torch.nn.LSTM(3, 4, proj_size=2).state_dict()))


# ----------------------------------------------------------------- whole torchvision models

@pytest.fixture(scope="module")
def resnet18_state_dict():
    """torchvision's resnet18 state_dict with random weights (no torchvision needed: fnn's builder
    gives the shapes, and test_torchvision_models.py checks them against torchvision)."""
    model = fnn.models.resnet18()
    shapes = jax.eval_shape(lambda k: model.init(k, (224, 224, 3))[1:], jax.random.PRNGKey(0))
    rng, out = np.random.default_rng(0), {}
    for tree, suffix in ((shapes[0], ("weight", "bias")), (shapes[1], ("running_mean", "running_var"))):
        for path, sub in fnn.tree_by_path(model, tree).items():
            prefix = path.split("/", 1)[1].replace("/", ".")
            for key, a in (sub.items() if isinstance(sub, dict) else ()):
                torch_shape = a.shape[::-1] if a.ndim == 2 else (a.shape[3], a.shape[2], *a.shape[:2]) \
                    if a.ndim == 4 else a.shape
                name = suffix[0] if key in ("W", "gamma", "mean") else suffix[1]
                out[f"{prefix}.{name}"] = rng.uniform(0.5, 1.5, torch_shape).astype(np.float32)
    out["bn1.num_batches_tracked"] = np.zeros((), np.int64)
    return out


def _assert_same_trees(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_load_torchvision_converts_by_layer_path(resnet18_state_dict):
    sd = resnet18_state_dict
    params, state = interop.load_torchvision("resnet18", sd)
    by_path = fnn.tree_by_path(fnn.models.resnet18(), params)
    np.testing.assert_array_equal(by_path["resnet18/conv1"]["W"], sd["conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(by_path["resnet18/fc"]["W"], sd["fc.weight"].T)
    np.testing.assert_array_equal(by_path["resnet18/layer1/0/bn2"]["beta"], sd["layer1.0.bn2.bias"])
    assert fnn.tree_by_path(fnn.models.resnet18(), state)["resnet18/bn1"]["var"].shape == (64,)
    assert params[0]["W"].dtype == jnp.float32


def test_safetensors_and_pth_files_round_trip(resnet18_state_dict, tmp_path):
    from safetensors.numpy import save_file
    save_file(resnet18_state_dict, tmp_path / "resnet18.safetensors")
    torch.save({k: torch.from_numpy(v) for k, v in resnet18_state_dict.items()}, tmp_path / "resnet18.pth")
    want = interop.load_torchvision("resnet18", resnet18_state_dict)
    _assert_same_trees(interop.load_torchvision("resnet18", tmp_path / "resnet18.safetensors"), want)
    _assert_same_trees(interop.load_torchvision("resnet18", str(tmp_path / "resnet18.pth")), want)


def test_missing_weights_file_says_fnn_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        interop.load_torchvision("vgg16", tmp_path / "vgg16.safetensors")
    message = str(info.value)
    assert "no weights file at" in message and "fnn never downloads" in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "safetensors.torch.save_file" in message
    with pytest.raises(ValueError, match=r"expected a \.safetensors, \.pth or \.pt file"):
        (tmp_path / "w.npz").write_bytes(b"")
        interop.load_torchvision("vgg16", tmp_path / "w.npz")


def test_unknown_missing_extra_and_misshapen_tensors_are_named(resnet18_state_dict):
    sd = dict(resnet18_state_dict)
    with pytest.raises(ValueError, match="load_torchvision: unknown model 'resnet50'; choose one of alexnet"):
        interop.load_torchvision("resnet50", sd)
    with pytest.raises(TypeError, match="expected a state_dict mapping or a file path, got int"):
        interop.load_torchvision("resnet18", 3)
    missing = {k: v for k, v in sd.items() if k != "layer3.1.bn1.running_var"}
    with pytest.raises(KeyError, match=r"no 'layer3.1.bn1.running_var' \(for fnn's resnet18/layer3/1/bn1/var\)"):
        interop.load_torchvision("resnet18", missing)
    with pytest.raises(ValueError, match="1 tensors that resnet18 has no place for: layer5.0.conv1.weight"):
        interop.load_torchvision("resnet18", {**sd, "layer5.0.conv1.weight": np.zeros((1, 1, 1, 1))})
    bad = {**sd, "layer1.0.conv2.weight": np.zeros((64, 64, 1, 3), np.float32)}
    with pytest.raises(ValueError, match=r"'layer1.0.conv2.weight' has shape \(64, 64, 1, 3\), "
                                         r"expected \(64, 64, 3, 3\) \(fnn's resnet18/layer1/0/conv2/W"):
        interop.load_torchvision("resnet18", bad)
    with pytest.raises(KeyError, match="the state_dict has no 'fc.weight'; is it resnet18's"):
        interop.load_torchvision("resnet18", {k: v for k, v in sd.items() if not k.startswith("fc.")})


def test_the_head_gives_num_classes(resnet18_state_dict):
    sd = {**resnet18_state_dict, "fc.weight": np.ones((10, 512), np.float32), "fc.bias": np.ones(10, np.float32)}
    params, _ = interop.load_torchvision("resnet18", sd)
    assert fnn.tree_by_path(fnn.models.resnet18(num_classes=10), params)["resnet18/fc"]["W"].shape == (512, 10)


def test_pth_without_torch_says_so(tmp_path, monkeypatch):
    (tmp_path / "alexnet.pth").write_bytes(b"not read")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)           # as if torch were not installed
    with pytest.raises(ImportError, match=r"load_torchvision\('alexnet'\): reading .*alexnet.pth .*needs torch"):
        interop.load_torchvision("alexnet", tmp_path / "alexnet.pth")
