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
from .combinators import Add as Add
from .combinators import Concat as Concat
from .dense import Dense as Dense
from .dense import Flatten as Flatten
from .dense import Reshape as Reshape
from .dropout import Dropout as Dropout

__all__ = [
    "Add",
    "Concat",
    "Dense",
    "Dropout",
    "Elu",
    "Flatten",
    "Gelu",
    "LeakyRelu",
    "LogSoftmax",
    "Mish",
    "PRelu",
    "Relu",
    "Reshape",
    "Selu",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
]
