# SPDX-License-Identifier: BSD-3-Clause
"""PCA where the autoencoders need it: the start's axes, and code sizes.

With ``init='pca'`` a network starts at PCA's solution (its axes come from
here), and ``n_components`` given as a fraction of variance is searched
between 1 and PCA's number of components for that fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from scipy import linalg
from scipy.sparse import issparse
from sklearn.decomposition import PCA
from sklearn.utils.extmath import svd_flip
from threadpoolctl import threadpool_limits

from skae._sparse import column_mean

T = TypeVar("T")

# PCA's svd_solver='auto' picks the covariance solver for X with at most
# this many features and ten times as many rows, and a full SVD for X at
# most this large on each side; sparse X follows the same rule.
COVARIANCE_FEATURES = 1000
FULL_SVD_SIZE = 500
# The widest sparse X whose whole spectrum (for a fraction of variance) is
# computed: its covariance matrix then takes 128 MiB.
MAX_SPECTRUM_FEATURES = 4096


def pca_components_for(X: Any, fraction: float) -> int:
    """PCA's number of components explaining ``fraction`` of X's variance.

    Sparse X gets PCA's covariance solver, which never centres X; it needs
    an n_features x n_features matrix, so very wide sparse X is refused.
    """
    solver = "full"
    if issparse(X):
        if X.shape[1] > MAX_SPECTRUM_FEATURES:
            raise ValueError(
                f"n_components={fraction} (a fraction of variance) needs PCA's "
                f"whole spectrum, which for sparse X with {X.shape[1]} features "
                f"means a {X.shape[1]} x {X.shape[1]} covariance matrix; sparse X "
                f"may have at most {MAX_SPECTRUM_FEATURES} features for it. Pass "
                "an int n_components instead."
            )
        solver = "covariance_eigh"
    with np.errstate(divide="ignore", invalid="ignore"), one_blas_thread():
        pca = PCA(n_components=fraction, svd_solver=solver).fit(X)
    return max(1, int(pca.n_components_))


def smallest_sufficient_code(
    fit_and_score: Callable[[int], tuple[float, T]],
    max_components: int,
    fraction: float,
) -> tuple[int, T]:
    """Search the smallest code whose reconstruction R² reaches ``fraction``.

    A bisection over 1..``max_components`` (PCA's own size for the fraction,
    which the PCA start reaches already); ``fit_and_score(n_components)``
    fits one model of that size and returns its R² (on held-out rows when
    there are any) and the model. If no size reaches the fraction, PCA's
    size is kept.
    """
    fits: dict[int, T] = {}

    def reaches(n_components: int) -> bool:
        r2, fits[n_components] = fit_and_score(n_components)
        return r2 >= fraction

    low, high = 1, max_components
    while low < high:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle + 1
    if low not in fits:
        reaches(low)
    return low, fits[low]


def principal_axes(X: Any, n_components: int, seed: int) -> torch.Tensor:
    """Return PCA's axes of X as float32 rows, at most ``n_components`` of them.

    Fewer if X has fewer samples or features. The axes are the same whether X
    is standardised or not, as skae divides every feature by one common scale.
    Sparse X stays sparse (:func:`sparse_axes`).
    """
    n_axes = min(n_components, *X.shape)
    # Data without variance (one row, constant columns) has arbitrary axes,
    # and PCA warns dividing its zero variances: harmless for a start.
    with np.errstate(divide="ignore", invalid="ignore"), one_blas_thread():
        if issparse(X):
            axes = sparse_axes(X, n_axes, seed)
        else:
            axes = PCA(n_components=n_axes, random_state=seed).fit(X).components_
    # ARPACK's axes come in reverse order, as a view with negative strides.
    return torch.as_tensor(np.ascontiguousarray(axes), dtype=torch.float32)


def sparse_axes(X: Any, n_axes: int, seed: int) -> np.ndarray:
    """PCA's axes of sparse X, found as PCA finds dense X's, without densifying X.

    The solver PCA's ``svd_solver='auto'`` picks for the same data passed
    dense, so that sparse and dense X start alike: the covariance solver for
    tall, narrow X (PCA's own sparse support); the randomized solver with X
    centred implicitly (:func:`randomized_axes`); for a full SVD, X made
    dense when it is small (at most 500 on each side), else the covariance
    solver for narrow X, else X made dense, which then has no more than 1.25
    times ``n_axes`` rows.
    """
    n_samples, n_features = X.shape
    if n_features <= COVARIANCE_FEATURES and n_samples >= 10 * n_features:
        solver = "covariance_eigh"
    elif max(X.shape) > FULL_SVD_SIZE and n_axes < 0.8 * min(X.shape):
        return randomized_axes(X, n_axes, seed)
    elif max(X.shape) > FULL_SVD_SIZE and n_features <= COVARIANCE_FEATURES:
        solver = "covariance_eigh"
    else:
        X, solver = X.toarray(), "full"
    pca = PCA(n_components=n_axes, svd_solver=solver, random_state=seed)
    return pca.fit(X).components_  # type: ignore[no-any-return]


def randomized_axes(X: Any, n_axes: int, seed: int) -> np.ndarray:
    """PCA's randomized solver on sparse X minus its column means, never formed.

    The steps and random draws of ``PCA(svd_solver='randomized')`` (Halko et
    al.'s range finder with LU power iterations, as scikit-learn runs it),
    with products by the centred matrix computed as products by X less those
    by its mean.
    """
    mean = column_mean(X).astype(X.dtype, copy=False)

    def centred(Q: np.ndarray) -> np.ndarray:
        return np.asarray(X @ Q) - mean @ Q

    def centred_t(Q: np.ndarray) -> np.ndarray:
        return np.asarray(X.T @ Q) - np.outer(mean, Q.sum(axis=0))

    # The wider side is sampled, as scikit-learn transposes wide matrices.
    transpose = X.shape[0] < X.shape[1]
    times, times_t = (centred_t, centred) if transpose else (centred, centred_t)
    n_iter = 7 if n_axes < 0.1 * min(X.shape) else 4
    Q = np.random.RandomState(seed).normal(
        size=(X.shape[0] if transpose else X.shape[1], n_axes + 10)
    )
    Q = Q.astype(X.dtype, copy=False)
    for _ in range(n_iter):
        Q = linalg.lu(times(Q), permute_l=True, check_finite=False)[0]
        Q = linalg.lu(times_t(Q), permute_l=True, check_finite=False)[0]
    Q = linalg.qr(times(Q), mode="economic", check_finite=False)[0]
    U_hat, _, Vt = linalg.svd(times_t(Q).T, full_matrices=False)
    U = Q @ U_hat
    if transpose:
        U, Vt = Vt[:n_axes].T, U[:, :n_axes].T
    else:
        U, Vt = U[:, :n_axes], Vt[:n_axes]
    return svd_flip(U, Vt, u_based_decision=False)[1]  # type: ignore[no-any-return]


def one_blas_thread() -> threadpool_limits:
    """Run NumPy's BLAS and LAPACK on one thread for the block.

    PCA's eigendecomposition on a multi-threaded BLAS waits on a thread that
    shares its core with any other busy process, which made PCA's start many
    times slower beside one busy process.
    On one thread it costs little more on a quiet machine, and its result
    does not depend on the machine's core count.
    """
    return threadpool_limits(limits=1, user_api="blas")
