"""torchvision's EfficientNet-B0 state_dict -> (params, state) of `fnn.models.efficientnet_b0`.

The builder names its layers as torchvision names its modules but for the squeeze-and-excitation
gate, which sits under "parallel/scale" (`fnn.layers.squeeze_excitation`): "...block.2.fc1.weight"
is renamed "...block.2.parallel.scale.fc1.weight", then converted by name
(`fnn.interop.params_from_state_dict`: Conv2d, BatchNorm2d and Linear by transposes).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from ..core import PyTree
from ..models.efficientnet import efficientnet_b0

_HEAD = "classifier.1.weight"
_WHO = "load_torchvision('efficientnet_b0')"


def fnn_name(torch_name: str) -> str:
    """torchvision's tensor name -> the dotted fnn path it goes to (SE's fc1/fc2 under parallel.scale)."""
    return re.sub(r"\.(fc[12])\.", r".parallel.scale.\1.", torch_name)


def convert(state_dict: Mapping) -> tuple[PyTree, PyTree]:
    """(params, state) of efficientnet_b0(num_classes = the rows of classifier.1.weight) from
    torchvision's state_dict (names -> arrays; CPU tensors are read with np.asarray)."""
    from .torchvision import params_from_state_dict  # late: torchvision.py lists this module in its tables
    if _HEAD not in state_dict:
        raise KeyError(f"{_WHO}: the state_dict has no {_HEAD!r}; is it EfficientNet-B0's? It has "
                       f"{', '.join(sorted(state_dict)[:6])} ...")
    model = efficientnet_b0(int(np.shape(state_dict[_HEAD])[0]))
    renamed = {fnn_name(k): v for k, v in state_dict.items()}
    return params_from_state_dict(model, renamed, (32, 32, 3), who=_WHO)
