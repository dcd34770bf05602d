# SPDX-License-Identifier: BSD-3-Clause
"""PCA where the autoencoders need it: the start's axes, and code sizes.

With ``init='pca'`` a network starts at PCA's solution (its axes come from
here), and ``n_components`` given as a fraction of variance is searched
between 1 and PCA's number of components for that fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

T = TypeVar("T")


def pca_components_for(X: np.ndarray, fraction: float) -> int:
    """PCA's number of components explaining ``fraction`` of X's variance."""
    with np.errstate(divide="ignore", invalid="ignore"), one_blas_thread():
        pca = PCA(n_components=fraction, svd_solver="full").fit(X)
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


def principal_axes(X: np.ndarray, n_components: int, seed: int) -> torch.Tensor:
    """Return PCA's axes of X as float32 rows, at most ``n_components`` of them.

    Fewer if X has fewer samples or features. The axes are the same whether X
    is standardised or not, as skae divides every feature by one common scale.
    """
    n_axes = min(n_components, *X.shape)
    # Data without variance (one row, constant columns) has arbitrary axes,
    # and PCA warns dividing its zero variances: harmless for a start.
    with np.errstate(divide="ignore", invalid="ignore"), one_blas_thread():
        pca = PCA(n_components=n_axes, random_state=seed).fit(X)
    return torch.as_tensor(pca.components_, dtype=torch.float32)


def one_blas_thread() -> threadpool_limits:
    """Run NumPy's BLAS and LAPACK on one thread for the block.

    PCA's eigendecomposition on a multi-threaded BLAS waits on a thread that
    shares its core with any other busy process: with one process spinning
    beside it on 2 cores, PCA's start of a 10,000 x 784 fit took 9.8 s instead
    of a fraction of a second. On one thread it costs little more on a quiet
    machine, and its result does not depend on the machine's core count.
    """
    return threadpool_limits(limits=1, user_api="blas")
