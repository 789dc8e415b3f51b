"""fnn: a functional neural-network library on JAX with hand-derived backward passes."""
from . import activations as activations
from . import checkpoint as checkpoint
from . import classic as classic
from . import data as data
from . import detection as detection
from . import distributed as distributed
from . import gradcheck as gradcheck
from . import initializers as initializers
from . import inspect as inspect
from . import interop as interop
from . import layers as layers
from . import losses as losses
from . import metrics as metrics
from . import models as models
from . import optim as optim
from . import train as train
from .core import Layer as Layer
from .core import cast as cast
from .core import manual as manual
from .layers.combinators import ensemble as ensemble
from .layers.combinators import parallel as parallel
from .layers.combinators import residual as residual
from .layers.combinators import serial as serial
from .paths import find_layer as find_layer
from .paths import layer_paths as layer_paths
from .paths import map_paths as map_paths
from .paths import select as select
from .paths import tree_by_path as tree_by_path
from .summary import summary as summary

__version__ = "0.1.0"

__all__ = [
    "Layer",
    "activations",
    "cast",
    "checkpoint",
    "classic",
    "data",
    "detection",
    "distributed",
    "find_layer",
    "gradcheck",
    "initializers",
    "ensemble",
    "inspect",
    "interop",
    "layer_paths",
    "layers",
    "losses",
    "manual",
    "map_paths",
    "metrics",
    "models",
    "optim",
    "parallel",
    "residual",
    "select",
    "serial",
    "summary",
    "train",
    "tree_by_path",
]
