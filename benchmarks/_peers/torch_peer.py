"""PyTorch on the CPU, eager, 2 threads: `nn.Sequential`, `torch.optim.Adam`, the
textbook loop (zero_grad, forward, backward, step); images NCHW for the CNN."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .common import BATCH, LR, Runner


def _model(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Linear(128, 10))


def runner(kind: str, x: np.ndarray, y: np.ndarray, threads: int = 2) -> Runner:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _model(kind)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(y.astype(np.int64))
    steps = xt.shape[0] // BATCH

    def run() -> float:
        perm = torch.randperm(xt.shape[0])
        total = torch.zeros(())
        for i in range(steps):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.detach()
        return float(total) / steps
    return Runner(run, f"torch {torch.__version__}, eager, {torch.get_num_threads()} threads")
