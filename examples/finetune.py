"""Fine-tuning a ResNet on Fashion-MNIST: a new head, a frozen trunk, progressive unfreezing.

1. pretrain `fnn.models.resnet_small` on task A (classes 0-4);
2. `fnn.paths.replace` its head with a new Dense(5) for task B (classes 5-9), keeping the trunk;
3. fine-tune on few task-B examples three ways, the same epochs and optimizer:
   frozen trunk (only the head trains; BatchNorm statistics stay), progressive unfreezing
   (head, then block_3, block_2, then the rest, one stage per epoch), and from scratch;
   Adam at 1e-2 for the head and 1e-3 for the trunk (discriminative rates).

    python examples/finetune.py [--limit 15000] [--finetune 1000] [--epochs 4] [--width 16]

--limit: task-A examples for pretraining (which runs max(1, epochs // 2) epochs); --finetune: the
task-B examples (at most --limit); --test: test images per task (at most --limit).
"""
import _common
import jax

import fnn
from fnn import layers as L
from fnn.losses import softmax_cross_entropy as loss

STAGES = {0: ["head"], 1: ["block_3"], 2: ["block_2"], 3: ["block_1", "stem", "stem_bn"]}


def task(data, low, limit):                 # classes low..low+4, relabelled 0..4
    x, y = data
    keep = (y >= low) & (y < low + 5)
    return x[keep][:limit], (y[keep] - low)[:limit]


def train(model, params, state, optimizer, data, key, epochs, batch_size, **kw):
    # XLA:CPU runs convolutions faster one jitted step at a time (docs/design.md §5)
    params, state, _, history = fnn.train.fit(model, params, state, optimizer, data, loss=loss, epochs=epochs,
                                              batch_size=batch_size, key=key, loop="step", progress=False, **kw)
    return params, state, history


def accuracy(model, params, state, data):
    return fnn.train.evaluate(model, params, state, data, loss=loss)["accuracy"]


def main():
    parser = _common.parser(__doc__, out=None, limit=15000, epochs=4, limit_help="task-A training examples",
                            small="python examples/finetune.py --limit 256 --epochs 1 --width 4")
    parser.add_argument("--finetune", type=int, default=1000, help="task-B training examples (default: 1000)")
    parser.add_argument("--test", type=int, default=2000, help="test images per task (default: 2000)")
    parser.add_argument("--width", type=int, default=16, help="the ResNet's first width (default: 16)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=128, epochs=args.epochs)
    train_set, test_set = _common.load_fashion_mnist(None)
    few, n_test = min(args.finetune, args.limit), min(args.test, args.limit)
    task_a, task_b = task(train_set, 0, args.limit), task(train_set, 5, few)
    test_a, test_b = task(test_set, 0, n_test), task(test_set, 5, n_test)
    key = jax.random.PRNGKey(args.seed)

    # 1. pretrain on task A
    model_a = fnn.models.resnet_small(5, width=args.width)
    init = jax.jit(model_a.init, static_argnums=1)        # one compile, not one per initializer op
    _, params, state = init(key, (28, 28, 1))
    params, state, _ = train(model_a, params, state, fnn.optim.adam(1e-3), task_a, key, max(1, args.epochs // 2), 128)
    pretrained = accuracy(model_a, params, state, test_a)
    print(f"pretrained on classes 0-4 ({len(task_a[1])} examples): test accuracy {pretrained:.4f}")

    # 2. a new head for task B; every other array is the pretrained one
    model_b, params_b, state_b = fnn.paths.replace(model_a, "head", L.Dense(5, name="head"), params, state,
                                                   in_shape=(28, 28, 1), key=jax.random.fold_in(key, 1))

    # 3. three fine-tunings on the few task-B examples, one optimizer (so frozen and stage 0 share a compile)
    #    with discriminative rates: the new head at 1e-2, the trunk at 1e-3 (a prefix of the params)
    labels = ("trunk",) * (len(model_b.children) - 1) + ("head",)
    optimizer = fnn.optim.partition({"trunk": fnn.optim.adam(1e-3), "head": fnn.optim.adam(1e-2)}, labels)
    k = jax.random.fold_in(key, 2)
    # from scratch: the same architecture, fresh weights (model_a: its compiled step is reused)
    _, fresh_params, fresh_state = init(jax.random.fold_in(key, 3), (28, 28, 1))
    runs = {"frozen trunk": (model_b, params_b, state_b, {"trainable": {0: ["head"]}}),
            "progressive unfreezing": (model_b, params_b, state_b, {"trainable": STAGES}),
            "from scratch": (model_a, fresh_params, fresh_state, {})}
    found = {}
    for name, (model, p, s, how) in runs.items():
        p, s, history = train(model, p, s, optimizer, task_b, k, args.epochs, 64, **how)
        found[name] = accuracy(model, p, s, test_b)
        stages = f", trained {history['trainable'][-1]} last" if "trainable" in history else ""
        print(f"{name:>24}: classes 5-9 test accuracy {found[name]:.4f} ({len(task_b[1])} examples, "
              f"{args.epochs} epochs{stages})")
    unfrozen = found["progressive unfreezing"]
    print(f"progressive unfreezing vs frozen trunk: {unfrozen - found['frozen trunk']:+.4f}; "
          f"vs from scratch: {unfrozen - found['from scratch']:+.4f}")
    _common.result(pretrained_accuracy=pretrained, frozen_accuracy=found["frozen trunk"],
                   unfrozen_accuracy=found["progressive unfreezing"], scratch_accuracy=found["from scratch"])


if __name__ == "__main__":
    _common.run(main)
