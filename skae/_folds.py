# SPDX-License-Identifier: BSD-3-Clause
"""Data path: which rows judge training, with copies of a row kept together.

Held-out rows stand for rows the model has not seen. A row whose exact copy
is among the training rows does not: a network that memorises it looks
better than it is, and PCA, which cannot memorise, looks worse. Training
rows repeated where test rows are not (oversampling before the fit) made
the default fit worse than PCA that way (docs/pca_start.rst). So every copy
of a row goes to the same side of a holdout, and into the same fold.

Nothing here knows about scikit-learn or torch networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skae._sparse import is_sparse

# Rows hashed at once: bounds the temporary integer copy of a dense batch.
_HASH_BATCH_ROWS = 4096
_HASH_SEED = 0


def copy_groups(X: Any) -> np.ndarray | None:
    """One integer per row, the same for identical rows; None if all rows differ.

    Rows are compared by their values' bits (a 64-bit hash of them, so two
    different rows share a group only by a chance of about 2**-64).
    """
    hashes = _row_hashes(X)
    _, groups, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return None if counts.max(initial=1) == 1 else groups.ravel()


def _row_hashes(X: Any) -> np.ndarray:
    n_features = X.shape[1]
    # Odd multipliers per column: a difference in any one column changes the sum.
    rng = np.random.default_rng(_HASH_SEED)
    offsets, multipliers = (
        rng.integers(0, 2**63, size=n_features, dtype=np.uint64) for _ in range(2)
    )
    multipliers |= np.uint64(1)
    with np.errstate(over="ignore"):
        if is_sparse(X):
            words = _bits(X.data)
            columns = X.indices
            terms = (words + offsets[columns]) * multipliers[columns] * (words != 0)
            sums = np.concatenate([[np.uint64(0)], np.cumsum(terms, dtype=np.uint64)])
            return sums[X.indptr[1:]] - sums[X.indptr[:-1]]
        hashes = np.empty(X.shape[0], dtype=np.uint64)
        for start in range(0, X.shape[0], _HASH_BATCH_ROWS):
            words = _bits(X[start : start + _HASH_BATCH_ROWS])
            # Zeros hash as zero, as in sparse rows, so a dense row and its
            # sparse form agree.
            terms = (words + offsets) * multipliers * (words != 0)
            hashes[start : start + _HASH_BATCH_ROWS] = terms.sum(
                axis=1, dtype=np.uint64
            )
        return hashes


def _bits(values: np.ndarray) -> np.ndarray:
    """Return the values' bits as unsigned 64-bit integers, -0.0 as 0.0's."""
    values = np.ascontiguousarray(values) + 0.0  # -0.0 + 0.0 is 0.0
    unsigned = np.dtype(f"uint{8 * values.dtype.itemsize}")
    return values.view(unsigned).astype(np.uint64)


def grouped_holdout(
    order: np.ndarray, n_valid: int, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Split rows in ``order`` into (train, valid) with no group on both sides.

    Groups are taken whole, in the order of their first row, skipping any
    larger than ``n_valid``, while they fit: about ``n_valid`` rows are held
    out. None when no group fits (every row has too many copies).
    """
    first_rows, sizes = _groups_in_order(order, groups)
    small = sizes <= n_valid
    candidates = first_rows[small]
    taken = candidates[np.cumsum(sizes[small]) <= n_valid]
    if taken.size == 0:
        return None
    held_out = np.isin(groups[order], groups[order][taken])
    return order[~held_out], order[held_out]


def grouped_folds(
    order: np.ndarray, n_folds: int, groups: np.ndarray
) -> list[np.ndarray] | None:
    """Split rows in ``order`` into about equal folds, each group in one of them.

    A group goes to the fold where its first row falls when the rows, each
    group's copies moved next to its first, are cut into ``n_folds`` equal
    parts. Empty folds are dropped; None when fewer than two are left, or
    when a fold holds more than half of the rows (the rest would train on
    too few).
    """
    n_samples = order.size
    first_rows, sizes = _groups_in_order(order, groups)
    starts = np.cumsum(sizes) - sizes
    group_fold = starts * n_folds // n_samples
    rank = np.empty(groups.max() + 1, dtype=np.int64)
    rank[groups[order][first_rows]] = np.arange(first_rows.size)
    row_fold = group_fold[rank[groups[order]]]
    folds = [order[row_fold == fold] for fold in range(n_folds)]
    folds = [fold for fold in folds if fold.size]
    if len(folds) < 2 or max(fold.size for fold in folds) > n_samples // 2:
        return None
    return folds


def _groups_in_order(
    order: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``order`` of each group's first row, in order, and group sizes."""
    in_order = groups[order]
    _, first_rows, sizes = np.unique(in_order, return_index=True, return_counts=True)
    by_position = np.argsort(first_rows)
    return first_rows[by_position], sizes[by_position]
