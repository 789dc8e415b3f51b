"""fnn: a functional neural-network library on JAX with hand-derived backward passes."""
from . import gradcheck as gradcheck
from . import initializers as initializers
from . import layers as layers
from .core import Layer as Layer
from .core import cast as cast
from .core import manual as manual
from .layers.combinators import parallel as parallel
from .layers.combinators import residual as residual
from .layers.combinators import serial as serial
from .summary import summary as summary

__version__ = "0.1.0"

__all__ = [
    "Layer",
    "cast",
    "gradcheck",
    "initializers",
    "layers",
    "manual",
    "parallel",
    "residual",
    "serial",
    "summary",
]
