"""fnn.optim: optimizers, schedules and gradient transforms written by hand on pytrees.

A rule or transform is an `Optimizer(init, update)`; compose them with `chain`, apply the
updates with `apply_updates`. No optax inside (optax is the tests' oracle).
"""
from .adafactor import AdafactorState as AdafactorState
from .adafactor import adafactor as adafactor
from .adam import AdamState as AdamState
from .adam import AmsgradState as AmsgradState
from .adam import NadamState as NadamState
from .adam import adabelief as adabelief
from .adam import adam as adam
from .adam import adamw as adamw
from .adam import amsgrad as amsgrad
from .adam import lamb as lamb
from .adam import nadam as nadam
from .adam import radam as radam
from .base import Optimizer as Optimizer
from .base import Schedule as Schedule
from .base import apply_updates as apply_updates
from .base import as_schedule as as_schedule
from .base import chain as chain
from .base import current_learning_rate as current_learning_rate
from .base import decay_mask as decay_mask
from .rules import AdagradState as AdagradState
from .rules import LarsState as LarsState
from .rules import LionState as LionState
from .rules import RmspropState as RmspropState
from .rules import SgdState as SgdState
from .rules import adagrad as adagrad
from .rules import lars as lars
from .rules import lion as lion
from .rules import rmsprop as rmsprop
from .rules import sgd as sgd
from .schedules import constant as constant
from .schedules import cosine_decay as cosine_decay
from .schedules import exponential_decay as exponential_decay
from .schedules import linear_warmup as linear_warmup
from .schedules import one_cycle as one_cycle
from .schedules import piecewise_constant as piecewise_constant
from .schedules import step_decay as step_decay
from .schedules import warmup_cosine as warmup_cosine
from .transforms import ReduceOnPlateauState as ReduceOnPlateauState
from .transforms import ScaleByScheduleState as ScaleByScheduleState
from .transforms import add_decayed_weights as add_decayed_weights
from .transforms import clip_by_global_norm as clip_by_global_norm
from .transforms import clip_by_value as clip_by_value
from .transforms import global_norm as global_norm
from .transforms import reduce_on_plateau as reduce_on_plateau
from .transforms import scale_by_schedule as scale_by_schedule
from .wrappers import MaskedState as MaskedState
from .wrappers import MultiStepsState as MultiStepsState
from .wrappers import PartitionState as PartitionState
from .wrappers import freeze as freeze
from .wrappers import masked as masked
from .wrappers import multi_steps as multi_steps
from .wrappers import partition as partition

__all__ = [
    # the record and its algebra
    "Optimizer", "Schedule", "apply_updates", "as_schedule", "chain", "current_learning_rate",
    # rules
    "sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "amsgrad", "adabelief", "radam", "lion",
    "adafactor", "lamb", "lars",
    # schedules
    "constant", "step_decay", "exponential_decay", "cosine_decay", "linear_warmup", "warmup_cosine",
    "one_cycle", "piecewise_constant",
    # transforms and wrappers
    "clip_by_global_norm", "clip_by_value", "global_norm", "add_decayed_weights", "decay_mask",
    "scale_by_schedule", "reduce_on_plateau", "masked", "freeze", "partition", "multi_steps",
    # states
    "SgdState", "AdagradState", "RmspropState", "AdamState", "NadamState", "AmsgradState", "LionState",
    "AdafactorState", "LarsState", "ScaleByScheduleState", "ReduceOnPlateauState", "MaskedState",
    "PartitionState", "MultiStepsState",
]
