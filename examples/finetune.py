"""Fine-tuning with frozen layers on Fashion-MNIST.

1. pretrain a trunk (with BatchNorm) and a head on classes 0-4;
2. freeze the trunk (parameters AND BatchNorm statistics), train a new head on classes 5-9;
3. unfreeze with discriminative rates: the trunk at 1/10 of the head's rate.

    python examples/finetune.py [--epochs 2] [--limit 20000]
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import layers as L
from fnn.losses import softmax_cross_entropy as loss

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--limit", type=int, default=None, help="training examples per phase")
args = parser.parse_args()

x, y = fnn.data.load_dataset("fashion-mnist", "train")
xt, yt = fnn.data.load_dataset("fashion-mnist", "test")


def classes(images, labels, low):        # keep classes low..low+4, relabelled 0..4
    keep = (labels >= low) & (labels < low + 5)
    return images[keep][:args.limit], (labels[keep] - low)[:args.limit]


def train(model, params, state, optimizer, data, key):
    params, state, _, _ = fnn.train.fit(model, params, state, optimizer, data, loss=loss, epochs=args.epochs,
                                        batch_size=128, key=key, progress=False)
    return params, state


def accuracy(model, params, state, data):
    return fnn.train.evaluate(model, params, state, data, loss=loss)["accuracy"]


trunk = fnn.serial(L.Flatten(), L.Dense(256), L.BatchNorm(), L.Relu(), L.Dense(128), L.Relu(), name="trunk")
key = jax.random.PRNGKey(0)

# 1. pretrain trunk + head A on classes 0-4
model_a = fnn.serial(trunk, L.Dense(5))
_, params_a, state_a = model_a.init(key, (28, 28, 1))
params_a, state_a = train(model_a, params_a, state_a, fnn.optim.adam(1e-3), classes(x, y, 0), key)
phase1 = accuracy(model_a, params_a, state_a, classes(xt, yt, 0))
print(f"phase 1  pretrained on classes 0-4: test accuracy {phase1:.4f}")

# 2. new head B on classes 5-9; the trunk is frozen: no updates, no optimizer state, BN in eval mode
model_b = fnn.serial(L.Frozen(trunk), L.Dense(5))
_, params_b, state_b = model_b.init(jax.random.fold_in(key, 1), (28, 28, 1))
params_b, state_b = (params_a[0], params_b[1]), (state_a[0], state_b[1])
is_trunk = (True, False)               # a prefix of the params (trunk, head): freeze the trunk
frozen_opt = fnn.optim.freeze(is_trunk, fnn.optim.adam(1e-3))
trunk_before = jax.tree.map(jnp.copy, (params_b[0], state_b[0]))
params_b, state_b = train(model_b, params_b, state_b, frozen_opt, classes(x, y, 5), jax.random.fold_in(key, 2))
unchanged = all(bool(jnp.array_equal(a, b)) for a, b in zip(jax.tree.leaves(trunk_before),
                                                             jax.tree.leaves((params_b[0], state_b[0]))))
print(f"phase 2  frozen trunk, new head on classes 5-9: test accuracy "
      f"{accuracy(model_b, params_b, state_b, classes(xt, yt, 5)):.4f}  "
      f"(trunk weights and BatchNorm statistics unchanged: {unchanged})")

# 3. unfreeze: the whole model trains, the trunk with a 10x smaller learning rate
model_c = fnn.serial(trunk, L.Dense(5))
groups = fnn.optim.partition({"trunk": fnn.optim.adam(1e-4), "head": fnn.optim.adam(1e-3)},
                             ("trunk", "head"))
params_c, state_c = train(model_c, params_b, state_b, groups, classes(x, y, 5), jax.random.fold_in(key, 3))
print(f"phase 3  unfrozen, discriminative rates (trunk 1e-4, head 1e-3): test accuracy "
      f"{accuracy(model_c, params_c, state_c, classes(xt, yt, 5)):.4f}")
print(f"BatchNorm running mean moved in phase 3: "
      f"{not np.allclose(state_c[0][2]['mean'], state_b[0][2]['mean'])}")
