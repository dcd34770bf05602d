"""Module builders: layer shapes and counts."""

import pytest
import torch
from torch import nn

from skae._networks import (
    Standardize,
    Unstandardize,
    build_dense_autoencoder,
    dense_stack,
)


def test_dense_stack_layers():
    stack = dense_stack([10, 8, 4], activation="tanh", dropout=0.5, batch_norm=True)
    kinds = [type(layer) for layer in stack]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout, nn.Linear]


def test_decoder_mirrors_encoder():
    network = build_dense_autoencoder(
        20, 3, (16, 8), activation="relu", dropout=0.0, batch_norm=False
    )
    encoder_widths = [
        (m.in_features, m.out_features)
        for m in network.encoder
        if isinstance(m, nn.Linear)
    ]
    decoder_widths = [
        (m.in_features, m.out_features)
        for m in network.decoder
        if isinstance(m, nn.Linear)
    ]
    assert encoder_widths == [(20, 16), (16, 8), (8, 3)]
    assert decoder_widths == [(3, 8), (8, 16), (16, 20)]
    assert network(torch.zeros(5, 20)).shape == (5, 20)


def test_empty_hidden_layers_give_linear_autoencoder():
    network = build_dense_autoencoder(
        6, 2, (), activation="relu", dropout=0.0, batch_norm=False
    )
    assert [type(m) for m in network.encoder] == [nn.Linear]
    assert [type(m) for m in network.decoder] == [nn.Linear]


def test_standardize_round_trip():
    mean, scale = torch.tensor([1.0, -2.0, 3.0]), torch.tensor(4.0)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    standardized = Standardize(mean, scale)(x)
    torch.testing.assert_close(standardized, (x - mean) / 4.0)
    torch.testing.assert_close(Unstandardize(mean, scale)(standardized), x)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "gelu"])
def test_every_activation_builds(activation):
    stack = dense_stack([4, 3, 2], activation=activation)
    assert stack(torch.ones(2, 4)).shape == (2, 2)
