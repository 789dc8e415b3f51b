"""Metric-learning losses on pairs and triplets, each a `Loss` record with its hand-derived gradient.

Both give one value per pair or triplet and average over them by default;
`weights=` has the shape of the pairs (distance's) or triplets (anchor's without D).
"""
from __future__ import annotations

import jax.numpy as jnp

from ._cases import case, distances, triplets
from .base import Array, Loss, check_float, check_reduction, check_same_shape, reduce, scale


def _pairs(name: str, distance: Array, similar: Array, reduction: str) -> tuple[Array, Array]:
    check_reduction(name, reduction)
    check_float(name, distance)
    check_same_shape(name, distance, similar, ("distance", "similar"))
    distance = jnp.asarray(distance)
    return distance, jnp.asarray(similar).astype(distance.dtype)


def _contrastive(distance: Array, similar: Array, *, margin: float = 1.0, reduction: str = "mean",
                 weights=None) -> Array:
    """Contrastive loss (Hadsell et al. 2006) per pair: l = y d^2 + (1 - y) max(0, margin - d)^2.

    distance d >= 0 (e.g. Euclidean, between two embeddings); similar y is 1 for
    a similar pair and 0 for a dissimilar one (bool, int or float). No 1/2 factor,
    as tensorflow_addons.losses.contrastive_loss.
    Derivative: dl/dd = 2 y d - 2 (1 - y) max(0, margin - d).
    """
    distance, similar = _pairs("contrastive", distance, similar, reduction)
    gap = jnp.maximum(0, margin - distance)
    return reduce("contrastive", similar * distance**2 + (1 - similar) * gap**2, reduction, weights)


def _contrastive_grad(distance: Array, similar: Array, *, margin: float = 1.0, reduction: str = "mean",
                      weights=None) -> Array:
    distance, similar = _pairs("contrastive.grad", distance, similar, reduction)
    gap = jnp.maximum(0, margin - distance)
    grad = 2 * similar * distance - 2 * (1 - similar) * gap
    return scale("contrastive.grad", grad, distance.shape, reduction, weights)


def _triplet_terms(name: str, anchor: Array, positive: Array, negative: Array, reduction: str) -> tuple:
    """Checked inputs and (a - p, a - n, ||a - p||, ||a - n||) over the last axis."""
    check_reduction(name, reduction)
    for array in (anchor, positive, negative):
        check_float(name, array)
    check_same_shape(name, anchor, positive, ("anchor", "positive"))
    check_same_shape(name, anchor, negative, ("anchor", "negative"))
    if jnp.ndim(anchor) < 1:
        raise ValueError(f"{name}: expected embeddings of shape (..., D), got a scalar anchor")
    diff_p, diff_n = anchor - positive, anchor - negative
    return diff_p, diff_n, jnp.linalg.norm(diff_p, axis=-1), jnp.linalg.norm(diff_n, axis=-1)


def _triplet(anchor: Array, positive: Array, negative: Array, *, margin: float = 1.0,
             reduction: str = "mean", weights=None) -> Array:
    """Triplet margin loss (Schroff et al. 2015) per triplet: l = max(0, ||a - p|| - ||a - n|| + margin).

    Embeddings a, p, n of shape (..., D); Euclidean norms over the last axis,
    without eps (optax.triplet_margin_loss with eps=0). "mean" averages over triplets.
    Derivative, active where l > 0, with unit vectors u_p = (a - p)/||a - p||, u_n = (a - n)/||a - n||:
        dl/da = u_p - u_n      dl/dp = -u_p      dl/dn = u_n
    A zero distance (a == p or a == n) takes the subgradient u = 0 instead of NaN.
    """
    _, _, dist_p, dist_n = _triplet_terms("triplet", anchor, positive, negative, reduction)
    return reduce("triplet", jnp.maximum(0, dist_p - dist_n + margin), reduction, weights)


def _triplet_grad(anchor: Array, positive: Array, negative: Array, *, margin: float = 1.0,
                  reduction: str = "mean", weights=None) -> tuple[Array, Array, Array]:
    """(dL/danchor, dL/dpositive, dL/dnegative)."""
    diff_p, diff_n, dist_p, dist_n = _triplet_terms("triplet.grad", anchor, positive, negative, reduction)
    active = (dist_p - dist_n + margin > 0)[..., None]
    unit_p = diff_p / jnp.where(dist_p == 0, 1, dist_p)[..., None]
    unit_n = diff_n / jnp.where(dist_n == 0, 1, dist_n)[..., None]
    grads = (jnp.where(active, unit_p - unit_n, 0), jnp.where(active, -unit_p, 0), jnp.where(active, unit_n, 0))
    return tuple(scale("triplet.grad", g, dist_p.shape, reduction, weights) for g in grads)


contrastive = Loss(_contrastive, _contrastive_grad, "contrastive")
triplet = Loss(_triplet, _triplet_grad, "triplet")

CASES = (
    case("contrastive", contrastive, distances),
    case("contrastive-weighted", contrastive, distances, weighted=True),
    case("triplet", triplet, triplets),
    case("triplet-weighted", triplet, triplets, weighted=True),
)
