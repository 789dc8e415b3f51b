"""Normalisation: BatchNorm, LayerNorm, GroupNorm, with closed-form backward passes.

All three standardise x over some axes, x^ = (x - mean) / sigma with
sigma = sqrt(var + eps) (biased variance), and then scale and shift per channel:
y = gamma * x^ + beta. The gradient of the standardisation is one formula,

    dx = (1 / sigma) (g - mean(g) - x^ mean(g x^)),  g = dL/dx^ = dy * gamma,

with the means over the normalised axes (`_standardize_backward`).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from ..core import Layer, check_example_shape, check_input
from ..gradcheck import Case
from ..initializers import Initializer, ones, zeros


def _standardize(x, axes, eps):
    """x^ = (x - mean) / sqrt(var + eps) over `axes` (keepdims); also returns 1/sigma, mean, var."""
    mean = x.mean(axis=axes, keepdims=True)
    var = jnp.square(x - mean).mean(axis=axes, keepdims=True)   # two passes: no cancellation
    inv_std = lax.rsqrt(var + jnp.asarray(eps, x.dtype))
    return (x - mean) * inv_std, inv_std, mean, var


def _standardize_backward(g, xhat, inv_std, axes):
    """dx = (1/sigma) (g - mean(g) - x^ mean(g x^)), means over the normalised `axes`."""
    return inv_std * (g - g.mean(axis=axes, keepdims=True)
                      - xhat * (g * xhat).mean(axis=axes, keepdims=True))


def _affine_params(name, in_shape, gamma_init, beta_init):
    check_example_shape(name, in_shape, "(..., C) ending in a channel axis")
    c = in_shape[-1]
    return {"gamma": gamma_init(None, (c,), jnp.float32), "beta": beta_init(None, (c,), jnp.float32)}


def _check_eps(name, eps):
    if not eps > 0:
        raise ValueError(f"{name}: eps must be positive, got {eps!r}")


def _affine_grads(dy, xhat):
    """dgamma = sum dy x^, dbeta = sum dy, summed over every axis but the channel axis."""
    dy2, xhat2 = dy.reshape(-1, dy.shape[-1]), xhat.reshape(-1, xhat.shape[-1])
    return {"gamma": (dy2 * xhat2).sum(axis=0), "beta": dy2.sum(axis=0)}


def _check(name, x, params, min_ndim=1):
    check_input(name, x, min_ndim=min_ndim)
    c = params["gamma"].shape[0]
    if x.shape[-1] != c:
        raise ValueError(f"{name}: expected x of shape (B, ..., {c}), got {tuple(x.shape)}")


def BatchNorm(momentum: float = 0.9, eps: float = 1e-5, *, gamma_init: Initializer = ones,
              beta_init: Initializer = zeros, name: str = "BatchNorm") -> Layer:
    """Batch normalisation over every axis but the last: y = gamma (x - mu) / sigma + beta.

    train: mu, var = batch mean and biased variance over (B, *spatial), sigma = sqrt(var + eps);
        state <- momentum * state + (1 - momentum) * batch, with the UNBIASED variance
        var * n / (n - 1) for the running var (PyTorch; momentum weighs the old value, as flax).
    eval: mu, var = the running statistics in state; state is returned unchanged.
    Shapes: x (B, ..., C) -> y (B, ..., C);  gamma, beta (C,);  state {"mean", "var"}: (C,).
    Backward: x^ = (x - mu) / sigma; sums over every axis but the last, n terms each:
        dgamma = sum dy x^      dbeta = sum dy
        train: dx = gamma / (n sigma) (n dy - dbeta - x^ dgamma)   (the closed form)
        eval:  dx = gamma / sigma dy
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"{name}: momentum must lie in [0, 1), got {momentum!r}")
    _check_eps(name, eps)

    def init(key, in_shape):
        del key
        params = _affine_params(name, in_shape, gamma_init, beta_init)
        c = in_shape[-1]
        state = {"mean": jnp.zeros((c,), jnp.float32), "var": jnp.ones((c,), jnp.float32)}
        return tuple(in_shape), params, state

    def forward(params, state, x, *, key=None, train=False):
        del key
        _check(name, x, params)
        axes = tuple(range(x.ndim - 1))
        if train:
            xhat, inv_std, mu, var = _standardize(x, axes, eps)
            n = x.size // x.shape[-1]
            new = {"mean": mu.reshape(-1), "var": var.reshape(-1) * (n / max(n - 1, 1))}
            state = {k: momentum * state[k] + (1 - momentum) * new[k].astype(state[k].dtype)
                     for k in state}
        else:
            inv_std = lax.rsqrt(state["var"].astype(x.dtype) + jnp.asarray(eps, x.dtype))
            xhat = (x - state["mean"].astype(x.dtype)) * inv_std
        scale = params["gamma"] * inv_std.reshape(-1)                        # gamma / sigma, (C,)
        cache = {"xhat": xhat, "scale": scale, **({"batch_stats": ()} if train else {})}
        return params["gamma"] * xhat + params["beta"], state, cache

    def backward(params, cache, dy):
        xhat, scale = cache["xhat"], cache["scale"]
        dparams = _affine_grads(dy, xhat)
        if "batch_stats" not in cache:                      # eval: the statistics were constants
            return dparams, dy * scale
        n = dy.size // dy.shape[-1]
        return dparams, (scale / n) * (n * dy - dparams["beta"] - xhat * dparams["gamma"])

    return Layer(init, forward, backward, name)


def LayerNorm(eps: float = 1e-5, *, gamma_init: Initializer = ones, beta_init: Initializer = zeros,
              name: str = "LayerNorm") -> Layer:
    """Layer normalisation over the last axis: y = gamma (x - mu) / sigma + beta, per example
    (and per position), mu, var = mean and biased variance of x[..., :], sigma = sqrt(var + eps).

    Shapes: x (B, ..., C) -> y (B, ..., C);  gamma, beta (C,);  no state; same in train and eval.
    Backward: x^ = (x - mu) / sigma, g = dy * gamma; means over the last axis:
        dgamma = sum_{b, ...} dy x^      dbeta = sum_{b, ...} dy
        dx = (1 / sigma) (g - mean(g) - x^ mean(g x^))
    """
    _check_eps(name, eps)

    def init(key, in_shape):
        del key
        return tuple(in_shape), _affine_params(name, in_shape, gamma_init, beta_init), ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        _check(name, x, params)
        xhat, inv_std, _, _ = _standardize(x, (-1,), eps)
        return params["gamma"] * xhat + params["beta"], state, (xhat, inv_std)

    def backward(params, cache, dy):
        xhat, inv_std = cache
        return _affine_grads(dy, xhat), _standardize_backward(dy * params["gamma"], xhat, inv_std, (-1,))

    return Layer(init, forward, backward, name)


def GroupNorm(groups: int, eps: float = 1e-5, *, gamma_init: Initializer = ones,
              beta_init: Initializer = zeros, name: str = "GroupNorm") -> Layer:
    """Group normalisation (Wu & He 2018): the C channels split into `groups` blocks of C/groups;
    each example is standardised over its spatial axes and one block: y = gamma x^ + beta.

    Shapes: x (B, *spatial, C) -> y (B, *spatial, C), C % groups == 0, at least one axis
        besides the batch;  gamma, beta (C,);  no state; same in train and eval.
    Backward: x^ per block, g = dy * gamma; means over (*spatial, C/groups) of each block:
        dgamma = sum_{b, spatial} dy x^      dbeta = sum_{b, spatial} dy
        dx = (1 / sigma) (g - mean(g) - x^ mean(g x^))
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    _check_eps(name, eps)

    def grouped(a):                                          # (B, *spatial, C) -> (B, *spatial, G, C/G)
        return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)

    def init(key, in_shape):
        del key
        params = _affine_params(name, in_shape, gamma_init, beta_init)
        if in_shape[-1] % groups:
            raise ValueError(f"{name}: channels {in_shape[-1]} not divisible by groups={groups} "
                             f"(in_shape {tuple(in_shape)})")
        return tuple(in_shape), params, ()

    def forward(params, state, x, *, key=None, train=False):
        del key, train
        _check(name, x, params)
        axes = (*range(1, x.ndim - 1), x.ndim)               # spatial axes and the within-group axis
        xhat, inv_std, _, _ = _standardize(grouped(x), axes, eps)
        xhat = xhat.reshape(x.shape)
        return params["gamma"] * xhat + params["beta"], state, (xhat, inv_std)

    def backward(params, cache, dy):
        xhat, inv_std = cache
        axes = (*range(1, dy.ndim - 1), dy.ndim)
        dx = _standardize_backward(grouped(dy * params["gamma"]), grouped(xhat), inv_std, axes)
        return _affine_grads(dy, xhat), dx.reshape(dy.shape)

    return Layer(init, forward, backward, name)


CASES = (
    Case("BatchNorm-train-2d", BatchNorm, (5,), train=True, batch=6),
    Case("BatchNorm-train-nhwc", BatchNorm, (3, 4, 2), train=True),
    Case("BatchNorm-eval-nhwc", BatchNorm, (3, 4, 2)),
    Case("LayerNorm", LayerNorm, (6,)),
    Case("LayerNorm-seq", LayerNorm, (3, 5)),
    Case("GroupNorm-2", lambda: GroupNorm(2), (3, 3, 4)),
    Case("GroupNorm-1d-4", lambda: GroupNorm(4), (5, 4)),
)
