"""PyTorch weights in and out (fnn never imports torch at module level).

`fnn.interop.layers` converts one layer's state_dict at a time (nn.Linear, nn.Conv2d,
nn.BatchNorm2d, nn.Embedding, nn.RNN/LSTM/GRU, nn.MultiheadAttention);
`fnn.interop.torchvision` converts whole torchvision models (`load_torchvision`).
"""
from .layers import batchnorm_from_torch as batchnorm_from_torch
from .layers import batchnorm_to_torch as batchnorm_to_torch
from .layers import conv2d_from_torch as conv2d_from_torch
from .layers import conv2d_to_torch as conv2d_to_torch
from .layers import embedding_from_torch as embedding_from_torch
from .layers import embedding_to_torch as embedding_to_torch
from .layers import linear_from_torch as linear_from_torch
from .layers import linear_to_torch as linear_to_torch
from .layers import multihead_attention_from_torch as multihead_attention_from_torch
from .layers import multihead_attention_to_torch as multihead_attention_to_torch
from .layers import rnn_from_torch as rnn_from_torch
from .layers import rnn_to_torch as rnn_to_torch
from .torchvision import load_torchvision as load_torchvision
from .torchvision import params_from_state_dict as params_from_state_dict
from .torchvision import read_state_dict as read_state_dict

__all__ = [
    "batchnorm_from_torch", "batchnorm_to_torch", "conv2d_from_torch", "conv2d_to_torch",
    "embedding_from_torch", "embedding_to_torch", "linear_from_torch", "linear_to_torch",
    "multihead_attention_from_torch", "multihead_attention_to_torch", "rnn_from_torch", "rnn_to_torch",
    "load_torchvision", "params_from_state_dict", "read_state_dict",
]
