"""fnn.layers: layer factories, each returning a `Layer(init, forward, backward, name)`."""
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
    "Flatten",
    "Reshape",
]
