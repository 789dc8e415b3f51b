"""Whole torchvision models' weights -> fnn `(params, state)`, by layer path (fnn never downloads).

    params, state = fnn.interop.load_torchvision("resnet18", "resnet18.safetensors")
    logits, _ = fnn.models.resnet18().apply(params, state, images)       # (B, 224, 224, 3) NHWC

`weights` is a state_dict-like mapping of names to arrays, or a path: `.safetensors` (read with
safetensors' NumPy API) or `.pth`/`.pt` (read with `torch.load(..., weights_only=True)`, when torch
is installed). The fnn builders name their layers as torchvision names its modules, so a layer at
path "resnet18/layer1/0/conv1" takes the tensors "layer1.0.conv1.*" (`params_from_state_dict`):

    Conv2D     W (kh, kw, in, out) = weight.transpose(2, 3, 1, 0)     b = bias
    Dense      W (in, out) = weight.T                                 b = bias
    BatchNorm  gamma, beta = weight, bias;  state mean, var = running_mean, running_var

Tables, one entry per model (add a row to add a model):
    BUILDERS[name]()        the fnn builder (ImageNet: 1000 classes, (224, 224, 3) inputs)
    CONVERTERS[name](sd)    state_dict -> (params, state); the head's rows give num_classes
    WEIGHT_URLS[name]       where torchvision's ImageNet weights live (fetch them where there is internet)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load_file

from .._optional import require
from ..core import Layer, PyTree
from ..models import torchvision as models
from ..models.efficientnet import efficientnet_b0
from ..models.vit_b_16 import vit_b_16
from ..paths import map_paths
from . import _efficientnet, _vit_b_16

__all__ = ["BUILDERS", "CONVERTERS", "WEIGHT_URLS", "load_torchvision", "params_from_state_dict",
           "read_state_dict"]

BUILDERS: dict[str, Callable[..., Layer]] = {
    "resnet18": models.resnet18, "resnet34": models.resnet34, "vgg11": models.vgg11, "vgg16": models.vgg16,
    "alexnet": models.alexnet, "efficientnet_b0": efficientnet_b0, "vit_b_16": vit_b_16}

WEIGHT_URLS: dict[str, str] = {   # torchvision 0.28's IMAGENET1K_V1 weights
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "vgg11": "https://download.pytorch.org/models/vgg11-8a719046.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "efficientnet_b0": "https://download.pytorch.org/models/efficientnet_b0_rwightman-7f5810bc.pth",
    "vit_b_16": "https://download.pytorch.org/models/vit_b_16-c867db91.pth"}

IMAGENET_SHAPE = (224, 224, 3)
_IGNORED = ("num_batches_tracked",)     # BatchNorm's step counter: fnn's BatchNorm has none


def _torch_name(key: str, ndim: int, who: str) -> tuple[str, tuple[int, ...]]:
    """fnn's parameter or state key -> (torch's tensor name, axes: fnn array = torch array.transpose(axes))."""
    if key == "W" and ndim in (2, 4):
        return "weight", (1, 0) if ndim == 2 else (2, 3, 1, 0)
    names = {"b": "bias", "gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}
    if key not in names:
        raise ValueError(f"{who}: no torch tensor name for fnn's {key!r} ({ndim} axes); this layer needs "
                         f"a converter of its own (a CONVERTERS entry)")
    return names[key], tuple(range(ndim))


def _convert_leaf(path: str, expected, state_dict: Mapping, used: set, who: str) -> jax.Array:
    """The array for fnn's parameter at `path` ("resnet18/layer1/0/conv1/W"): "layer1.0.conv1.weight"."""
    *layer, key = path.split("/")[1:]
    name, axes = _torch_name(key, len(expected.shape), who)
    torch_key = ".".join([*layer, name])
    if torch_key not in state_dict:
        raise KeyError(f"{who}: the state_dict has no {torch_key!r} (for fnn's {path})")
    value = np.asarray(state_dict[torch_key])
    torch_shape = tuple(expected.shape[j] for j in np.argsort(axes))
    if value.shape != torch_shape:
        raise ValueError(f"{who}: {torch_key!r} has shape {value.shape}, expected {torch_shape} "
                         f"(fnn's {path} is {tuple(expected.shape)})")
    used.add(torch_key)
    return jnp.asarray(value.transpose(axes))


def params_from_state_dict(model: Layer, state_dict: Mapping, in_shape: tuple = IMAGENET_SHAPE, *,
                           who: str = "params_from_state_dict") -> tuple[PyTree, PyTree]:
    """`(params, state)` of `model` from a PyTorch state_dict whose tensor names are the model's layer
    paths with dots ("layer1.0.conv1.weight" for "resnet18/layer1/0/conv1", key W; the table above).
    Every tensor must be used (but "*.num_batches_tracked"), with torch's shape; dtypes are kept.
    `in_shape` only has to be one the model accepts (the parameters do not depend on it)."""
    params, state = jax.eval_shape(lambda key: model.init(key, tuple(in_shape))[1:], jax.random.PRNGKey(0))
    used: set = set()
    convert = lambda tree: jax.tree.map(                                 # noqa: E731
        lambda path, expected: _convert_leaf(path, expected, state_dict, used, who),
        map_paths(model, lambda path: path)(tree), tree)
    params, state = convert(params), convert(state)
    extra = sorted(k for k in state_dict if k not in used and not k.endswith(_IGNORED))
    if extra:
        raise ValueError(f"{who}: the state_dict has {len(extra)} tensors that {model.name} has no place "
                         f"for: {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}")
    return params, state


def _converter(name: str, head: str) -> Callable[[Mapping], tuple[PyTree, PyTree]]:
    """state_dict -> (params, state) of BUILDERS[name](num_classes = the rows of `head`)."""
    def convert(state_dict: Mapping) -> tuple[PyTree, PyTree]:
        who = f"load_torchvision({name!r})"
        if head not in state_dict:
            raise KeyError(f"{who}: the state_dict has no {head!r}; is it {name}'s? It has "
                           f"{', '.join(sorted(state_dict)[:6])} ...")
        model = BUILDERS[name](num_classes=int(np.shape(state_dict[head])[0]))
        return params_from_state_dict(model, state_dict, who=who)
    return convert


CONVERTERS: dict[str, Callable[[Mapping], tuple[PyTree, PyTree]]] = {
    "resnet18": _converter("resnet18", "fc.weight"), "resnet34": _converter("resnet34", "fc.weight"),
    "vgg11": _converter("vgg11", "classifier.6.weight"), "vgg16": _converter("vgg16", "classifier.6.weight"),
    "alexnet": _converter("alexnet", "classifier.6.weight"),
    "efficientnet_b0": _efficientnet.convert, "vit_b_16": _vit_b_16.convert}    # their own: renamed paths


def _missing_file(name: str, path: Path) -> str:
    url = WEIGHT_URLS.get(name, "torchvision's weight URL for the model")
    return (f"load_torchvision({name!r}): no weights file at {path}. fnn never downloads; on a machine with "
            f"internet and torch, get torchvision's weights ({url}, or "
            f"torchvision.models.get_model({name!r}, weights='DEFAULT').state_dict(), or torch.hub"
            f".load_state_dict_from_url), save them with safetensors.torch.save_file(state_dict, "
            f"'{name}.safetensors'), and pass that file's path (a .pth/.pt file works too where torch is installed)")


def read_state_dict(path: str | os.PathLike, *, who: str = "read_state_dict") -> dict[str, np.ndarray]:
    """The tensors of a `.safetensors` file (safetensors' NumPy API) or of a `.pth`/`.pt` file
    (`torch.load(path, weights_only=True)`, which needs torch), as a dict of NumPy arrays."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pth", ".pt"):
        raise ValueError(f"{who}: expected a .safetensors, .pth or .pt file, got {path}")
    if suffix == ".safetensors":
        return dict(load_file(path))
    torch = require("torch", extra="dev", purpose=f"{who}: reading {path} (a PyTorch pickle; "
                                                  f"a .safetensors file needs no torch)")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    loaded = loaded.get("state_dict", loaded) if isinstance(loaded, Mapping) else loaded
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{who}: {path} holds a {type(loaded).__name__}, expected a state_dict")
    return {k: v.detach().cpu().numpy() for k, v in loaded.items() if hasattr(v, "detach")}


def load_torchvision(name: str, weights: Mapping | str | os.PathLike) -> tuple[PyTree, PyTree]:
    """`(params, state)` for `BUILDERS[name]()` from torchvision's weights: a state_dict-like mapping
    of names to arrays (NumPy arrays, CPU tensors) or a path to a .safetensors / .pth / .pt file.
    A missing file says where to get one (fnn never downloads); unknown, missing or extra tensors
    and wrong shapes raise errors that name them."""
    if name not in CONVERTERS:
        raise ValueError(f"load_torchvision: unknown model {name!r}; choose one of {', '.join(sorted(CONVERTERS))}")
    if not isinstance(weights, Mapping):
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(f"load_torchvision({name!r}): expected a state_dict mapping or a file path, "
                            f"got {type(weights).__name__}")
        if not Path(weights).expanduser().is_file():
            raise FileNotFoundError(_missing_file(name, Path(weights)))
        weights = read_state_dict(weights, who=f"load_torchvision({name!r})")
    return CONVERTERS[name](weights)
