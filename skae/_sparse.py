# SPDX-License-Identifier: BSD-3-Clause
"""Data path for SciPy sparse X: statistics and dense batches, never all of X dense.

Sparse X reaches the network one batch at a time: :class:`SparseRows` holds
a CSR matrix's arrays as tensors and makes the rows a batch asks for dense
on the device, so memory grows with the non-zeros plus one batch, not with
rows x features. Centring would densify X; it is done batch by batch, after
the rows are made dense. Nothing here knows about scikit-learn or networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse
import torch


def is_sparse(X: Any) -> bool:
    """Whether X is a SciPy sparse matrix or array."""
    return bool(scipy.sparse.issparse(X))


def canonical_csr(X: Any) -> Any:
    """Return CSR X without duplicate entries, copying X only if it has some.

    Duplicates would be summed by SciPy and overwritten by a dense batch.
    """
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def dense_rows(X: Any) -> np.ndarray:
    """Rows of X as a C-ordered NumPy array; dense X is returned as it is."""
    return X.toarray() if is_sparse(X) else X


def value_range(X: Any) -> tuple[float, float]:
    """Return the smallest and largest value of sparse X, implicit zeros included."""
    values = X.data
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if X.nnz < X.shape[0] * X.shape[1]:
        low, high = min(low, 0.0), max(high, 0.0)
    return low, high


def column_mean(X: Any) -> np.ndarray:
    """Mean of each column of CSR X in float64.

    Summed row by row, as NumPy sums a dense array's columns: the same
    numbers give the same mean, to the last bit.
    """
    sums = np.bincount(
        X.indices, weights=X.data.astype(np.float64, copy=False), minlength=X.shape[1]
    )
    return sums / X.shape[0]


def column_variance(X: Any) -> np.ndarray:
    """Variance of each column of CSR X in float64, in two passes like NumPy's.

    The implicit zeros of a column with mean m add m**2 each.
    """
    n_samples = X.shape[0]
    mean = column_mean(X)
    deviations = X.data.astype(np.float64) - mean[X.indices]
    squares = np.bincount(X.indices, weights=deviations**2, minlength=X.shape[1])
    n_zeros = n_samples - np.bincount(X.indices, minlength=X.shape[1])
    return (squares + n_zeros * mean**2) / n_samples


class SparseRows:
    """The rows of a CSR matrix on a device, made dense batch by batch.

    Indexing with row indices (a tensor, on any device) or a slice returns
    those rows as a dense float32 tensor on the device, passed through
    ``transform`` (the standardisation); :meth:`take` returns a subset,
    still sparse. ``shape`` and ``device`` are those of the dense tensor it
    stands for, so the training loop takes either.
    """

    def __init__(
        self,
        indptr: torch.Tensor,
        indices: torch.Tensor,
        data: torch.Tensor,
        n_features: int,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = torch.Size((indptr.shape[0] - 1, n_features))
        self.device = data.device
        self.transform = transform

    @classmethod
    def of(
        cls,
        X: Any,
        device: torch.device,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> SparseRows:
        """Hold canonical CSR X on ``device``; its values become float32."""
        return cls(
            torch.as_tensor(X.indptr, dtype=torch.int64, device=device),
            torch.as_tensor(X.indices, dtype=torch.int64, device=device),
            torch.as_tensor(X.data, dtype=torch.float32, device=device),
            X.shape[1],
            transform,
        )

    def __len__(self) -> int:
        return self.shape[0]

    def _positions(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each stored entry of ``rows``: its row in the batch, its place in data."""
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        batch_rows = torch.repeat_interleave(
            torch.arange(rows.shape[0], device=self.device), counts
        )
        # Entry k of batch row r sits at starts[r] + (k - first entry of r).
        firsts = torch.cumsum(counts, 0) - counts
        places = (
            torch.arange(batch_rows.shape[0], device=self.device)
            - firsts[batch_rows]
            + starts[batch_rows]
        )
        return batch_rows, places

    def _rows(self, rows: torch.Tensor | slice) -> torch.Tensor:
        if isinstance(rows, slice):
            return torch.arange(*rows.indices(self.shape[0]), device=self.device)
        return rows.to(self.device)

    def __getitem__(self, rows: torch.Tensor | slice) -> torch.Tensor:
        """Return the given rows dense, as ``transform`` maps them."""
        rows = self._rows(rows)
        batch_rows, places = self._positions(rows)
        batch = torch.zeros(
            (rows.shape[0], self.shape[1]), dtype=self.data.dtype, device=self.device
        )
        batch[batch_rows, self.indices[places]] = self.data[places]
        return self.transform(batch)

    def take(self, rows: torch.Tensor) -> SparseRows:
        """Return the given rows as SparseRows, without making them dense."""
        rows = self._rows(rows)
        batch_rows, places = self._positions(rows)
        counts = torch.bincount(batch_rows, minlength=rows.shape[0])
        indptr = torch.cat(
            [torch.zeros(1, dtype=torch.int64, device=self.device), counts.cumsum(0)]
        )
        return SparseRows(
            indptr,
            self.indices[places],
            self.data[places],
            self.shape[1],
            self.transform,
        )
