"""Training: docs/design.md §5's one pure step, two loops that run it, `fit`, `evaluate`, `predict`.

    step(params, state, opt_state, (x, y), key) -> (params, state, opt_state, metrics)

`grads="autodiff"` differentiates the loss with JAX's `value_and_grad`; `grads="manual"`
runs `model.forward`, the loss's hand-derived gradient (`loss.grad`) and `model.backward`
(no autodiff anywhere in the step). Inputs and targets may be pytrees of arrays, examples
first; a target `(labels, weights)` means `loss(pred, labels, weights=weights)`.
"""
from .evaluation import evaluate as evaluate
from .evaluation import predict as predict
from .fit import fit as fit
from .fit import steps_per_epoch as steps_per_epoch
from .loops import LOOPS as LOOPS
from .loops import Buckets as Buckets
from .loops import Carry as Carry
from .loops import make_epoch as make_epoch
from .loops import make_step_loop as make_step_loop
from .lr_find import LrFindResult as LrFindResult
from .lr_find import lr_find as lr_find
from .step import GRADS as GRADS
from .step import loss_and_grads as loss_and_grads
from .step import make_train_step as make_train_step
from .step import train_step as train_step
from .unfreeze import UnfreezeSchedule as UnfreezeSchedule
from .unfreeze import unfreeze_schedule as unfreeze_schedule

__all__ = ["GRADS", "LOOPS", "Buckets", "Carry", "evaluate", "fit", "loss_and_grads", "make_epoch", "make_step_loop",
           "make_train_step", "predict", "steps_per_epoch", "train_step", "UnfreezeSchedule", "unfreeze_schedule",
           "LrFindResult", "lr_find"]
