"""Fine-tuning with frozen layers on Fashion-MNIST.

1. pretrain a trunk (with BatchNorm) and a head on classes 0-4;
2. freeze the trunk (parameters AND BatchNorm statistics), train a new head on classes 5-9;
3. unfreeze with discriminative rates: the trunk at 1/10 of the head's rate.

    python examples/finetune.py [--epochs 2] [--limit 20000]
"""
import _common
import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import layers as L
from fnn.losses import softmax_cross_entropy as loss

BATCH = 128


def classes(images, labels, low, limit=None):        # keep classes low..low+4, relabelled 0..4
    keep = (labels >= low) & (labels < low + 5)
    return images[keep][:limit], (labels[keep] - low)[:limit]


def train(model, params, state, optimizer, data, key, epochs):
    params, state, _, _ = fnn.train.fit(model, params, state, optimizer, data, loss=loss, epochs=epochs,
                                        batch_size=BATCH, key=key, progress=False)
    return params, state


def accuracy(model, params, state, data):
    return fnn.train.evaluate(model, params, state, data, loss=loss)["accuracy"]


def main():
    parser = _common.parser(__doc__, out=None, limit=None, epochs=2, limit_help="training examples per phase",
                            small="python examples/finetune.py --limit 5000 --epochs 1")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    x, y = fnn.data.load_dataset("fashion-mnist", "train")
    first, second = classes(x, y, 0, args.limit), classes(x, y, 5, args.limit)     # training sets
    xt, yt = fnn.data.load_dataset("fashion-mnist", "test")

    trunk = fnn.serial(L.Flatten(), L.Dense(256), L.BatchNorm(), L.Relu(), L.Dense(128), L.Relu(), name="trunk")
    key = jax.random.PRNGKey(args.seed)

    # 1. pretrain trunk + head A on classes 0-4
    model_a = fnn.serial(trunk, L.Dense(5))
    _, params_a, state_a = model_a.init(key, (28, 28, 1))
    params_a, state_a = train(model_a, params_a, state_a, fnn.optim.adam(1e-3), first, key, args.epochs)
    phase1 = accuracy(model_a, params_a, state_a, classes(xt, yt, 0))
    print(f"phase 1  pretrained on classes 0-4: test accuracy {phase1:.4f}")

    # 2. new head B on classes 5-9; the trunk is frozen: no updates, no optimizer state, BN in eval mode
    model_b = fnn.serial(L.Frozen(trunk), L.Dense(5))
    _, params_b, state_b = model_b.init(jax.random.fold_in(key, 1), (28, 28, 1))
    params_b, state_b = (params_a[0], params_b[1]), (state_a[0], state_b[1])
    is_trunk = (True, False)               # a prefix of the params (trunk, head): freeze the trunk
    frozen_opt = fnn.optim.freeze(is_trunk, fnn.optim.adam(1e-3))
    trunk_before = jax.tree.map(jnp.copy, (params_b[0], state_b[0]))
    params_b, state_b = train(model_b, params_b, state_b, frozen_opt, second, jax.random.fold_in(key, 2), args.epochs)
    unchanged = all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(trunk_before),
                                                                 jax.tree.leaves((params_b[0], state_b[0]))))
    phase2 = accuracy(model_b, params_b, state_b, classes(xt, yt, 5))
    print(f"phase 2  frozen trunk, new head on classes 5-9: test accuracy {phase2:.4f}  "
          f"(trunk weights and BatchNorm statistics unchanged: {unchanged})")

    # 3. unfreeze: the whole model trains, the trunk with a 10x smaller learning rate
    model_c = fnn.serial(trunk, L.Dense(5))
    groups = fnn.optim.partition({"trunk": fnn.optim.adam(1e-4), "head": fnn.optim.adam(1e-3)},
                                 ("trunk", "head"))
    params_c, state_c = train(model_c, params_b, state_b, groups, second, jax.random.fold_in(key, 3), args.epochs)
    phase3 = accuracy(model_c, params_c, state_c, classes(xt, yt, 5))
    print(f"phase 3  unfrozen, discriminative rates (trunk 1e-4, head 1e-3): test accuracy {phase3:.4f}")
    print(f"BatchNorm running mean moved in phase 3: "
          f"{not np.allclose(state_c[0][2]['mean'], state_b[0][2]['mean'])}")
    _common.result(phase1_accuracy=phase1, phase2_accuracy=phase2, phase3_accuracy=phase3, trunk_unchanged=unchanged)


if __name__ == "__main__":
    _common.run(main)
