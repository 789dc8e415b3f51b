"""The KL divergence of a diagonal Gaussian from the standard normal: a VAE's prior term.

A `Loss` record on two arrays, (mu, log_var), with no target; one item per example (the
sum over the last, latent, axis), so "mean" averages over examples and "sum" adds them.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..core import check_float
from ._cases import case, normal
from .base import Array, Loss, check_reduction, check_same_shape, reduce, scale


def _checked(name: str, mu, log_var, reduction: str) -> tuple[Array, Array]:
    check_reduction(name, reduction)
    check_float(name, mu)
    check_same_shape(name, mu, log_var, ("mu", "log_var"))
    mu = jnp.asarray(mu)
    if mu.ndim < 1:
        raise ValueError(f"{name}: expected mu and log_var of shape (..., L), got scalars")
    return mu, jnp.asarray(log_var).astype(mu.dtype)


def _gaussian_kl(mu: Array, log_var: Array, *, reduction: str = "mean", weights=None) -> Array:
    """KL(N(mu, exp(log_var)) || N(0, I)) = -1/2 sum_j (1 + log_var_j - mu_j^2 - exp(log_var_j)) per example.

    mu, log_var: (..., L), the sum runs over the last axis. `.grad` returns (dmu, dlog_var).
    Derivative: dl/dmu = mu,  dl/dlog_var = (exp(log_var) - 1) / 2.
    """
    mu, log_var = _checked("gaussian_kl", mu, log_var, reduction)
    items = -0.5 * jnp.sum(1 + log_var - mu * mu - jnp.exp(log_var), axis=-1)
    return reduce("gaussian_kl", items, reduction, weights)


def _gaussian_kl_grad(mu: Array, log_var: Array, *, reduction: str = "mean", weights=None) -> tuple:
    mu, log_var = _checked("gaussian_kl.grad", mu, log_var, reduction)
    items = mu.shape[:-1]
    return (scale("gaussian_kl.grad", mu, items, reduction, weights),
            scale("gaussian_kl.grad", (jnp.exp(log_var) - 1) / 2, items, reduction, weights))


gaussian_kl = Loss(_gaussian_kl, _gaussian_kl_grad, "gaussian_kl")

CASES = (
    case("gaussian_kl", gaussian_kl, normal),
    case("gaussian_kl-weighted", gaussian_kl, normal, weighted=True),
)
