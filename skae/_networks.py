# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: the modules skae trains. Imports torch only."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
}


def dense_stack(
    sizes: Sequence[int],
    *,
    activation: str,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Build linear layers through ``sizes``, with extras between them.

    Every layer but the last is followed by batch norm (optional), the
    activation and dropout (optional). The last layer stays linear, so codes
    and reconstructions are unbounded, as PCA's are.
    """
    layers: list[nn.Module] = []
    n_layers = len(sizes) - 1
    for index, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if index == n_layers - 1:
            break
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """An encoder and a decoder trained to reconstruct their input.

    The network works on standardised data; :class:`Standardize` and
    :class:`Unstandardize` wrap it for use on raw inputs.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``."""
        return self.decoder(self.encoder(x))

    def training_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Loss minimised in training: mean squared reconstruction error."""
        return F.mse_loss(self(x), x)


def build_dense_autoencoder(
    n_features: int,
    n_components: int,
    hidden_layer_sizes: Sequence[int],
    *,
    activation: str,
    dropout: float,
    batch_norm: bool,
) -> Autoencoder:
    """Dense autoencoder whose decoder mirrors the encoder's widths."""
    widths = [n_features, *hidden_layer_sizes, n_components]
    options = {"activation": activation, "dropout": dropout, "batch_norm": batch_norm}
    return Autoencoder(
        dense_stack(widths, **options), dense_stack(widths[::-1], **options)
    )


class Standardize(nn.Module):
    """Fixed affine map ``(x - mean) / scale`` from input units to network units."""

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise ``x``."""
        return (x - self.mean) / self.scale


class Unstandardize(Standardize):
    """Inverse of :class:`Standardize`: ``x * scale + mean``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` back to input units."""
        return torch.addcmul(self.mean, x, self.scale)
