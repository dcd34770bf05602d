"""Module builders: layer shapes and counts."""

import pytest
import torch
from torch import nn

from skae._layers import build_convolutional, build_dense, dense_stack
from skae._networks import AutoencoderNet
from skae._standardization import Standardize, Unstandardize


def test_dense_stack_layers():
    stack = dense_stack([10, 8, 4], activation="tanh", dropout=0.5, batch_norm=True)
    kinds = [type(layer) for layer in stack]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Tanh, nn.Dropout, nn.Linear]


def test_decoder_mirrors_encoder():
    network = AutoencoderNet(
        *build_dense(
            20, 3, 3, (16, 8), activation="relu", dropout=0.0, batch_norm=False
        )
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
    network = AutoencoderNet(
        *build_dense(6, 2, 2, (), activation="relu", dropout=0.0, batch_norm=False)
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


@pytest.mark.parametrize(
    ("image_shape", "channels"),
    [((1, 28, 28), (8, 16)), ((3, 7, 9), (4,)), ((2, 5, 5), ())],
)
def test_convolutional_round_trip_shapes(image_shape, channels):
    n_features = image_shape[0] * image_shape[1] * image_shape[2]
    encoder, decoder = build_convolutional(
        image_shape,
        6,
        3,
        channels,
        (12,),
        activation="relu",
        dropout=0.1,
        batch_norm=True,
    )
    encoder.eval()
    decoder.eval()
    assert encoder(torch.zeros(2, n_features)).shape == (2, 6)
    assert decoder(torch.zeros(2, 3)).shape == (2, n_features)
    n_convolutions = sum(isinstance(m, nn.Conv2d) for m in encoder)
    n_transposed = sum(isinstance(m, nn.ConvTranspose2d) for m in decoder)
    assert n_convolutions == n_transposed == len(channels)


def test_variational_code_path_returns_means():
    from skae._networks import VariationalNet

    encoder, decoder = build_dense(
        5, 4, 2, (), activation="relu", dropout=0.0, batch_norm=False
    )
    network = VariationalNet(encoder, decoder, 2)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(network.code_path()(x), encoder(x)[:, :2])


def test_corruption():
    from skae._networks import corrupt

    torch.manual_seed(0)
    x = torch.ones(200, 50)
    assert torch.equal(corrupt(x, None, 0.5), x)
    masked = corrupt(x, "mask", 0.3)
    assert 0.25 < (masked == 0).float().mean().item() < 0.35
    noisy = corrupt(x, "gaussian", 0.5)
    assert 0.45 < (noisy - x).std().item() < 0.55
