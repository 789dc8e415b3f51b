"""NumPy, float32: the MLP's forward, backward and Adam written out by hand."""
from __future__ import annotations

import numpy as np

from .common import BATCH, LR, MLP_SIZES, Runner

_F = np.float32


def _init(rng):
    params = []
    for a, b in zip(MLP_SIZES[:-1], MLP_SIZES[1:], strict=True):
        limit = np.sqrt(6.0 / (a + b))
        params += [rng.uniform(-limit, limit, (a, b)).astype(_F), np.zeros(b, _F)]
    return params


def _forward_backward(params, x, y):
    """Loss and gradients of softmax cross-entropy through Dense-ReLU-Dense-ReLU-Dense."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = np.maximum(x @ W1 + b1, 0)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    z = h2 @ W3 + b3
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(x.shape[0])
    loss = -np.mean(np.log(p[rows, y]))
    p[rows, y] -= 1
    dz = p / _F(x.shape[0])
    dh2 = (dz @ W3.T) * (h2 > 0)
    dh1 = (dh2 @ W2.T) * (h1 > 0)
    grads = [x.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0)]
    return loss, grads


class _Adam:
    def __init__(self, params, lr=LR, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        step = _F(self.lr / c1)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= _F(self.b1)
            m += _F(1 - self.b1) * g
            v *= _F(self.b2)
            v += _F(1 - self.b2) * g * g
            p -= step * m / (np.sqrt(v / _F(c2)) + _F(self.eps))


def runner(kind: str, x: np.ndarray, y: np.ndarray) -> Runner:
    if kind != "mlp":
        raise NotImplementedError("the NumPy peer is written for the MLP only")
    rng = np.random.default_rng(0)
    params = _init(rng)
    adam = _Adam(params)
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    steps = flat.shape[0] // BATCH

    def run() -> float:
        perm = rng.permutation(flat.shape[0])
        total = 0.0
        for i in range(steps):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            loss, grads = _forward_backward(params, flat[idx], y[idx])
            adam.step(params, grads)
            total += float(loss)
        return total / steps
    return Runner(run, f"numpy {np.__version__}, float32")
