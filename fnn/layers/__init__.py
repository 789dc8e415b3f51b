"""fnn.layers: layer factories, each returning a `Layer(init, forward, backward, name)`."""
from .activation import Elu as Elu
from .activation import Gelu as Gelu
from .activation import LeakyRelu as LeakyRelu
from .activation import LogSoftmax as LogSoftmax
from .activation import Mish as Mish
from .activation import PRelu as PRelu
from .activation import Relu as Relu
from .activation import Selu as Selu
from .activation import Sigmoid as Sigmoid
from .activation import Softmax as Softmax
from .activation import Softplus as Softplus
from .activation import Swish as Swish
from .activation import Tanh as Tanh
from .attention import MultiHeadAttention as MultiHeadAttention
from .attention import dot_product_attention as dot_product_attention
from .attention import scaled_dot_product_attention as scaled_dot_product_attention
from .augment import RandomFlip as RandomFlip
from .augment import RandomTranslate as RandomTranslate
from .blockwise import blockwise_attention as blockwise_attention
from .combinators import Add as Add
from .combinators import Concat as Concat
from .combinators import Frozen as Frozen
from .combinators import MeanLogSoftmax as MeanLogSoftmax
from .conv import Conv1D as Conv1D
from .conv import Conv2D as Conv2D
from .conv import ConvTranspose2D as ConvTranspose2D
from .dense import Dense as Dense
from .dense import Flatten as Flatten
from .dense import Reshape as Reshape
from .dropout import Dropout as Dropout
from .dropout import keep_mask as keep_mask
from .embedding import Embedding as Embedding
from .gating import Identity as Identity
from .gating import Multiply as Multiply
from .gating import StochasticDepth as StochasticDepth
from .gating import multiply as multiply
from .gating import squeeze_excitation as squeeze_excitation
from .norm import BatchNorm as BatchNorm
from .norm import GroupNorm as GroupNorm
from .norm import LayerNorm as LayerNorm
from .normalize import IMAGENET_MEAN as IMAGENET_MEAN
from .normalize import IMAGENET_STD as IMAGENET_STD
from .normalize import Normalize as Normalize
from .pooling import AdaptiveAvgPool2D as AdaptiveAvgPool2D
from .pooling import AvgPool1D as AvgPool1D
from .pooling import AvgPool2D as AvgPool2D
from .pooling import GlobalAvgPool as GlobalAvgPool
from .pooling import GlobalMaxPool as GlobalMaxPool
from .pooling import MaxPool1D as MaxPool1D
from .pooling import MaxPool2D as MaxPool2D
from .recurrent import GRU as GRU
from .recurrent import LSTM as LSTM
from .recurrent import Bidirectional as Bidirectional
from .recurrent import Reversed as Reversed
from .recurrent import SimpleRNN as SimpleRNN
from .reversible import Reversible as Reversible
from .sampling import Reparameterize as Reparameterize
from .seq2seq_attention import AdditiveAttention as AdditiveAttention
from .seq2seq_attention import LuongAttention as LuongAttention
from .transformer import LearnedPositions as LearnedPositions
from .transformer import Pick as Pick
from .transformer import SinusoidalPositions as SinusoidalPositions
from .transformer import TransformerDecoderBlock as TransformerDecoderBlock
from .transformer import TransformerEncoderBlock as TransformerEncoderBlock

__all__ = [
    "AdditiveAttention",
    "LuongAttention",
    "MultiHeadAttention",
    "dot_product_attention",
    "scaled_dot_product_attention",
    "blockwise_attention",
    "LearnedPositions",
    "Pick",
    "SinusoidalPositions",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "SimpleRNN",
    "Reversed",
    "LSTM",
    "GRU",
    "Embedding",
    "Identity",
    "Multiply",
    "StochasticDepth",
    "multiply",
    "squeeze_excitation",
    "Bidirectional",
    "Add",
    "AdaptiveAvgPool2D",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNorm",
    "Concat",
    "MeanLogSoftmax",
    "Conv1D",
    "Conv2D",
    "ConvTranspose2D",
    "Dense",
    "Dropout",
    "keep_mask",
    "Elu",
    "Flatten",
    "Frozen",
    "Reversible",
    "Gelu",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "GroupNorm",
    "LayerNorm",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Normalize",
    "LeakyRelu",
    "LogSoftmax",
    "MaxPool1D",
    "MaxPool2D",
    "Mish",
    "PRelu",
    "RandomFlip",
    "RandomTranslate",
    "Relu",
    "Reparameterize",
    "Reshape",
    "Selu",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
]
