"""fnn.optim: optimizers built as optax is, from small transforms written by hand on pytrees.

A transform is an `Optimizer(init, update)` with its own NamedTuple state; `chain` composes
them, and the named optimizers (`adam`, `lamb`, ...) are short chains. Only
`scale_by_learning_rate` knows the rate; `learning_rate_at(optimizer, step)` reads it.
Apply the updates with `apply_updates`. No optax inside (optax is the tests' oracle).
"""
from .adam import ScaleByAdamState as ScaleByAdamState
from .adam import ScaleByAmsgradState as ScaleByAmsgradState
from .adam import ScaleByBeliefState as ScaleByBeliefState
from .adam import ScaleByNadamState as ScaleByNadamState
from .adam import scale_by_adam as scale_by_adam
from .adam import scale_by_amsgrad as scale_by_amsgrad
from .adam import scale_by_belief as scale_by_belief
from .adam import scale_by_nadam as scale_by_nadam
from .adam import scale_by_radam as scale_by_radam
from .alias import adabelief as adabelief
from .alias import adafactor as adafactor
from .alias import adagrad as adagrad
from .alias import adam as adam
from .alias import adamw as adamw
from .alias import amsgrad as amsgrad
from .alias import lamb as lamb
from .alias import lars as lars
from .alias import lion as lion
from .alias import nadam as nadam
from .alias import radam as radam
from .alias import rmsprop as rmsprop
from .alias import sgd as sgd
from .base import Optimizer as Optimizer
from .base import Schedule as Schedule
from .base import apply_updates as apply_updates
from .base import as_schedule as as_schedule
from .base import chain as chain
from .base import learning_rate_at as learning_rate_at
from .factored import FactoredState as FactoredState
from .factored import clip_by_block_rms as clip_by_block_rms
from .factored import scale_by_factored_rms as scale_by_factored_rms
from .factored import scale_by_param_block_rms as scale_by_param_block_rms
from .plateau import ReduceOnPlateauState as ReduceOnPlateauState
from .plateau import reduce_on_plateau as reduce_on_plateau
from .scaling import EmaState as EmaState
from .scaling import ScaleByLionState as ScaleByLionState
from .scaling import ScaleByRmsState as ScaleByRmsState
from .scaling import ScaleByRssState as ScaleByRssState
from .scaling import TraceState as TraceState
from .scaling import ema as ema
from .scaling import scale_by_lion as scale_by_lion
from .scaling import scale_by_rms as scale_by_rms
from .scaling import scale_by_rss as scale_by_rss
from .scaling import trace as trace
from .schedules import constant as constant
from .schedules import cosine_decay as cosine_decay
from .schedules import cosine_warm_restarts as cosine_warm_restarts
from .schedules import exponential_decay as exponential_decay
from .schedules import linear_schedule as linear_schedule
from .schedules import one_cycle as one_cycle
from .schedules import piecewise_constant as piecewise_constant
from .schedules import step_decay as step_decay
from .schedules import warmup_cosine as warmup_cosine
from .transforms import ScaleByLearningRateState as ScaleByLearningRateState
from .transforms import add_decayed_weights as add_decayed_weights
from .transforms import clip_by_global_norm as clip_by_global_norm
from .transforms import clip_by_value as clip_by_value
from .transforms import decay_mask as decay_mask
from .transforms import global_norm as global_norm
from .transforms import scale as scale
from .transforms import scale_by_learning_rate as scale_by_learning_rate
from .transforms import scale_by_trust_ratio as scale_by_trust_ratio
from .wrappers import MaskedState as MaskedState
from .wrappers import MultiStepsState as MultiStepsState
from .wrappers import PartitionState as PartitionState
from .wrappers import freeze as freeze
from .wrappers import masked as masked
from .wrappers import multi_steps as multi_steps
from .wrappers import partition as partition

__all__ = [
    "Optimizer", "Schedule", "apply_updates", "as_schedule", "chain", "learning_rate_at", "sgd",
    "adagrad", "rmsprop", "adam", "adamw", "nadam", "amsgrad", "adabelief", "radam", "lion",
    "adafactor", "lamb", "lars", "scale_by_adam", "scale_by_amsgrad", "scale_by_belief",
    "scale_by_radam", "scale_by_nadam", "scale_by_rms", "scale_by_rss", "scale_by_lion", "trace",
    "ema", "scale_by_factored_rms", "clip_by_block_rms", "scale_by_param_block_rms",
    "scale_by_learning_rate", "scale", "clip_by_global_norm", "clip_by_value", "global_norm",
    "add_decayed_weights", "decay_mask", "scale_by_trust_ratio", "reduce_on_plateau", "masked",
    "freeze", "partition", "multi_steps", "constant", "linear_schedule", "step_decay",
    "exponential_decay", "cosine_decay", "cosine_warm_restarts", "warmup_cosine", "one_cycle", "piecewise_constant",
    # states
    "ScaleByAdamState", "ScaleByAmsgradState", "ScaleByBeliefState", "ScaleByNadamState",
    "ScaleByRmsState", "ScaleByRssState", "ScaleByLionState", "TraceState", "EmaState",
    "FactoredState", "ScaleByLearningRateState", "ReduceOnPlateauState", "MaskedState",
    "PartitionState", "MultiStepsState",
]
