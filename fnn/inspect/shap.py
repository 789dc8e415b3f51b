"""Shapley values of a class score over groups of pixels (patches or superpixels): exact by
enumeration, and KernelSHAP (Lundberg & Lee 2017) by weighted least squares on coalitions.

A coalition z in {0, 1}^M keeps the groups with z_g = 1 and replaces the others by the baseline:
v(z) = y_c(x' + z[groups] (x - x')). No gradients: only the model's forward, in batched jitted calls.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core import Layer, PyTree
from .attribution import logits

EXACT_LIMIT = 16        # 2^16 forward passes per image at most
CHUNK = 128             # coalitions per jitted call (a fixed size: one compile)


class Shapley(NamedTuple):
    """`values` (B, M) per group; `pixels` (B, H, W) each pixel holding its group's value;
    `groups` (H, W) group ids; `score_change` (B,) = y_c(x) - y_c(x') = sum(values)."""
    values: jax.Array
    pixels: jax.Array
    groups: jax.Array
    score_change: jax.Array


def patch_groups(shape: tuple, patch: int, what: str = "patch_groups") -> np.ndarray:
    """(H, W) ids of the `patch` x `patch` squares tiling an H x W image, row-major (edges smaller)."""
    H, W = shape
    if not isinstance(patch, int) or isinstance(patch, bool) or not 1 <= patch <= min(H, W):
        raise ValueError(f"{what}: patch must be an int in 1..{min(H, W)} for {H}x{W} images, got {patch!r}")
    cols = -(-W // patch)
    return (np.arange(H)[:, None] // patch) * cols + np.arange(W)[None, :] // patch


def _groups(x, patch, groups, what) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"{what}: expected images (B, H, W, C), got x of shape {x.shape}")
    if groups is None:
        return patch_groups(x.shape[1:3], patch, what)
    g = np.asarray(groups)
    ids = np.unique(g) if g.shape == x.shape[1:3] else None
    if ids is None or g.dtype.kind not in "iu" or not np.array_equal(ids, np.arange(len(ids))):
        raise ValueError(f"{what}: groups must be an int map of shape {x.shape[1:3]} using ids 0..M-1, "
                         f"got shape {g.shape}, dtype {g.dtype}")
    return g


def _baseline(x, baseline, what):
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(f"{what}: baseline must be a number, an array or 'mean', got {baseline!r}")
        return jnp.broadcast_to(x.mean(axis=0), x.shape)
    return jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)


@functools.partial(jax.jit, static_argnames=("model",))
def _coalition_scores(model: Layer, params, state, x, baseline, masks, chosen):
    """y_c on x' + mask (x - x') for every mask (S, H, W) and image: (S, B)."""
    def one(mask):
        m = mask[None, :, :, None].astype(x.dtype)
        y = model.apply(params, state, baseline + m * (x - baseline))[0]
        return jnp.take_along_axis(y, chosen[:, None], axis=-1)[:, 0]
    return jax.lax.map(one, masks)


def _scores(model, params, state, x, baseline, groups, Z, chosen) -> np.ndarray:
    """v(z) (S, B) in float64 numpy for coalitions Z (S, M), CHUNK at a time."""
    out = []
    for start in range(0, len(Z), CHUNK):
        block = Z[start:start + CHUNK]
        padded = np.concatenate([block, np.zeros((CHUNK - len(block), Z.shape[1]), Z.dtype)])
        masks = jnp.asarray(padded[:, groups])
        out.append(np.asarray(_coalition_scores(model, params, state, x, baseline, masks, chosen))[:len(block)])
    return np.concatenate(out).astype(np.float64)


def _setup(model, params, state, x, target, baseline, patch, groups, what):
    x = jnp.asarray(x)
    g = _groups(x, patch, groups, what)
    y = logits(model, params, state, x)          # jitted, and shared with the other attributions
    n = y.shape[-1]
    chosen = np.argmax(np.asarray(y), axis=-1) if target is None else np.broadcast_to(np.asarray(target), x.shape[:1])
    if np.any((chosen < 0) | (chosen >= n)):
        raise ValueError(f"{what}: target must lie in 0..{n - 1} for a model with {n} classes, got {target!r}")
    return x, g, _baseline(x, baseline, what), jnp.asarray(chosen, jnp.int32)


def _result(values, groups, change) -> Shapley:
    values = jnp.asarray(values)
    return Shapley(values, values[:, jnp.asarray(groups)], jnp.asarray(groups), jnp.asarray(change))


def exact_shapley(model: Layer, params: PyTree, state: PyTree, x, target=None, *, patch: int = 4,
                  groups=None, baseline=0.0) -> Shapley:
    """Shapley values by the definition, over all 2^M coalitions (M <= 16):
    phi_g = sum_{S not containing g} |S|! (M - |S| - 1)! / M! (v(S + g) - v(S)).

    Shapes: x (B, H, W, C) -> values (B, M), pixels (B, H, W); groups (H, W) ids 0..M-1.
    """
    x, g, base, chosen = _setup(model, params, state, x, target, baseline, patch, groups, "exact_shapley")
    M = int(g.max()) + 1
    if M > EXACT_LIMIT:
        raise ValueError(f"exact_shapley: {M} groups need 2^{M} model calls per image; at most "
                         f"{EXACT_LIMIT} groups are enumerated (use kernel_shap, or larger patches)")
    Z = np.array(list(itertools.product((0, 1), repeat=M)), np.int32)          # (2^M, M)
    size = Z.sum(axis=1)
    w = np.array([math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M) for s in range(M)] + [0.0])
    A = Z * w[np.maximum(size - 1, 0)][:, None] - (1 - Z) * w[size][:, None]     # (2^M, M)
    v = _scores(model, params, state, x, base, g, Z, chosen)                     # (2^M, B)
    return _result(v.T @ A, g, v[-1] - v[0])


def _coalitions(M: int, samples: int, key) -> tuple[np.ndarray, np.ndarray]:
    """(Z (S, M), weights (S,)): every proper coalition with the Shapley kernel weight when
    2^M - 2 <= samples; else samples/2 pairs (z, 1 - z), |z| drawn with probability proportional to
    the kernel's mass on that size, z uniform of that size, each weighted 1."""
    sizes = np.arange(1, M)
    if 2 ** M - 2 <= samples:
        Z = np.array(list(itertools.product((0, 1), repeat=M))[1:-1], np.int32)
        s = Z.sum(axis=1)
        return Z, (M - 1) / (np.array([math.comb(M, k) for k in s]) * s * (M - s))
    mass = (M - 1) / (sizes * (M - sizes))
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())     # numpy: no compile per M
    half = max(samples // 2, 1)
    drawn = rng.choice(sizes, half, p=mass / mass.sum())
    order = np.argsort(rng.random((half, M)), axis=1)
    Z = (np.argsort(order, axis=1) < drawn[:, None]).astype(np.int32)            # a random subset of each size
    return np.concatenate([Z, 1 - Z]), np.ones(2 * half)


def _solve(Z, weights, v, f0, change) -> np.ndarray:
    """Weighted least squares v(z) - f0 = z . phi with sum(phi) = change exactly: eliminate phi_M,
    v - f0 - z_M change = sum_{g<M} (z_g - z_M) phi_g. Z (S, M), v (S, B) -> phi (B, M)."""
    X = (Z[:, :-1] - Z[:, -1:]).astype(np.float64)
    Y = v - f0[None] - Z[:, -1:] * change[None]
    XtW = X.T * weights[None]
    head = np.linalg.lstsq(XtW @ X, XtW @ Y, rcond=None)[0]                       # (M-1, B)
    return np.concatenate([head, (change - head.sum(axis=0))[None]]).T


def kernel_shap(model: Layer, params: PyTree, state: PyTree, x, target=None, *, patch: int = 4,
                groups=None, samples: int = 512, baseline=0.0, key=None) -> Shapley:
    """KernelSHAP (Lundberg & Lee 2017): phi = argmin sum_z pi(z) (v(z) - v(0) - z . phi)^2 with
    pi(z) = (M-1) / (C(M,|z|) |z| (M-|z|)), subject to sum(phi) = v(1) - v(0) (enforced exactly).
    Every coalition when 2^M - 2 <= samples (then phi = the exact Shapley values); else `samples`
    coalitions drawn from pi in complementary pairs, deterministic given `key`. `baseline`: a
    number, an array like x, or "mean" (the batch's mean image); `target`: default the predicted class.

    Shapes: x (B, H, W, C) -> values (B, M), pixels (B, H, W); groups (H, W) ids 0..M-1.
    """
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"kernel_shap: samples must be an int >= 2, got {samples!r}")
    x, g, base, chosen = _setup(model, params, state, x, target, baseline, patch, groups, "kernel_shap")
    M = int(g.max()) + 1
    if M < 2:
        raise ValueError(f"kernel_shap: need at least 2 groups, got {M}")
    Z, weights = _coalitions(M, samples, jax.random.PRNGKey(0) if key is None else key)
    ends = np.stack([np.zeros(M, np.int32), np.ones(M, np.int32)])
    v = _scores(model, params, state, x, base, g, np.concatenate([ends, Z]), chosen)   # CHUNK - 2 samples: one call
    change = v[1] - v[0]
    return _result(_solve(Z, weights, v[2:], v[0], change), g, change)


def rank_correlation(a, b) -> float:
    """Spearman's rho of two equally long vectors (average ranks for ties)."""
    def ranks(v):
        v = np.asarray(v, np.float64).ravel()
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        _, inverse = np.unique(v, return_inverse=True)
        return np.bincount(inverse, r)[inverse] / np.bincount(inverse)[inverse]
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    scale = math.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / scale) if scale > 0 else 0.0
