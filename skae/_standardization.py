# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: the input standardisation, one object from fit to inference.

Every network works on standardised data, ``(x - mean) / scale`` with a
per-feature mean and one common scale. :class:`Standardization` is that map:
it is estimated from the training data, turns them into the rows a network
trains on, and makes the modules that put a fitted network between raw input
and raw output (:class:`Standardize`, :class:`Unstandardize`), which fold
into a network's end layers for inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from skae._data import Rows, to_tensor
from skae._sparse import SparseRows, column_mean, column_variance, is_sparse

# Rows that estimate the common scale, at most (evenly spaced): the scale only
# conditions the network, so a sample serves.
SCALE_ROWS = 8192


def smallest_scale(mean: np.ndarray) -> float:
    """Return the smallest common scale standardisation uses with this mean.

    Zero, too small for the float32 network to divide by, or below float32's
    resolution at the data's magnitude (float64 rounding noise): below it,
    the data count as constant, and the scale as 1.
    """
    float32 = np.finfo(np.float32)
    return max(
        float(float32.tiny),
        float(float32.eps) * float(np.max(np.abs(mean), initial=0.0)),
    )


@dataclass(frozen=True)
class Standardization:
    """The map ``(x - mean) / scale`` from input units to network units.

    ``mean`` holds one float64 value per feature, ``scale`` is one float
    (a fitted model's ``mean_`` and ``scale_``).
    """

    mean: np.ndarray
    scale: float

    @classmethod
    def of(cls, X: Any) -> Standardization:
        """Estimate the standardisation of X (dense, or CSR).

        The mean is exact; the scale, the root mean square after centring,
        is estimated from at most about :data:`SCALE_ROWS` evenly spaced
        rows: a fraction of the cost of a full pass. Sparse X gets the same
        mean to the last bit, and the same scale to float64 rounding.
        """
        step = max(1, X.shape[0] // SCALE_ROWS)
        rows = X if step == 1 else X[::step]
        if is_sparse(X):
            mean, variance = column_mean(X), column_variance(rows)
        else:
            mean = X.mean(axis=0, dtype=np.float64)
            variance = rows.var(axis=0, dtype=np.float64)
        scale = float(np.sqrt(np.mean(variance)))
        if not np.isfinite(scale) or scale < smallest_scale(mean):
            scale = 1.0
        return cls(mean, scale)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and the scale as float32 tensors."""
        return (
            torch.as_tensor(self.mean, dtype=torch.float32),
            torch.tensor(self.scale, dtype=torch.float32),
        )

    def module(self) -> Standardize:
        """Return the map as a module, from input units to network units."""
        return Standardize(*self.tensors())

    def inverse_module(self) -> Unstandardize:
        """Return the inverse map as a module, from network units to input units."""
        return Unstandardize(*self.tensors())

    def network_rows(self, X: Any, device: torch.device) -> Rows:
        """Return validated X standardised, as the rows a network trains on.

        Sparse X stays sparse: centring would make it dense, so its batches
        are standardised as they are made dense, into the same numbers as
        dense X gives.
        """
        standardize = self.module().to(device)
        if is_sparse(X):
            return SparseRows.of(X, device, standardize)
        with torch.no_grad():
            return standardize(to_tensor(X, device))


class Standardize(nn.Module):
    """Fixed affine map ``(x - mean) / scale`` from input units to network units."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x``, in one pass over it: ``x / scale - mean / scale``."""
        return torch.addcmul(-self.mean / self.scale, x, 1 / self.scale)

    @torch.no_grad()
    def fold_into(self, layers: list[nn.Linear]) -> None:
        """Fold the map into linear layers that read its output (in place)."""
        mean, scale = self.mean.to(layers[0].weight), self.scale.to(layers[0].weight)
        for layer in layers:
            layer.weight /= scale
            layer.bias -= layer.weight @ mean


class Unstandardize(Standardize):
    """Inverse of :class:`Standardize`: ``x * scale + mean``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` back to input units."""
        return torch.addcmul(self.mean, x, self.scale)

    @torch.no_grad()
    def fold_into(self, layers: list[nn.Linear]) -> None:
        """Fold the map into linear layers whose outputs, summed, it reads."""
        mean, scale = self.mean.to(layers[0].weight), self.scale.to(layers[0].weight)
        for index, layer in enumerate(layers):
            layer.weight *= scale
            layer.bias *= scale
            if index == 0:
                # The layers' outputs are summed: add the mean once.
                layer.bias += mean
