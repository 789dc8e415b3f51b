"""The Frechet distance between Gaussians fitted to two sets of features (as FID, with any feature
extractor: with a network's features it is that network's distance, not the Inception FID).

Host-side NumPy in float64, run once per evaluation, after the features are computed.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["frechet_distance", "gaussian_frechet_distance"]


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigendecomposition)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def gaussian_frechet_distance(mean_a: ArrayLike, cov_a: ArrayLike, mean_b: ArrayLike, cov_b: ArrayLike) -> float:
    """d^2 = |mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)).

    tr (cov_a cov_b)^(1/2) = sum sqrt(eig(S cov_b S)), S = cov_a^(1/2): a symmetric PSD matrix with
    the same eigenvalues as cov_a cov_b, so no complex square root is needed.
    Shapes: mean (D,), cov (D, D) for both Gaussians.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    d = mean_a.shape[0] if mean_a.ndim == 1 else 0
    if not d or mean_b.shape != (d,) or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(f"gaussian_frechet_distance: expected means (D,) and covariances (D, D), got "
                         f"{mean_a.shape}, {cov_a.shape}, {mean_b.shape}, {cov_b.shape}")
    root = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """The Frechet distance between N(mean_a, cov_a) and N(mean_b, cov_b) fitted to two feature sets
    (sample mean, unbiased covariance as numpy.cov): see `gaussian_frechet_distance`.

    Shapes: features_a (N_a, D), features_b (N_b, D), N_a, N_b >= 2 -> a float (squared distance, as FID).
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance: expected features_a (N_a, D) and features_b (N_b, D) with "
                         f"N >= 2 rows each, got {a.shape} and {b.shape}")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], -1),
                                     b.mean(0), np.cov(b, rowvar=False).reshape(b.shape[1], -1))
