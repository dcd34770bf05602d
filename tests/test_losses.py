"""The loss, the sigmoid output it brings, and the code activation."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import skae
from skae import AutoencoderTransformer, VariationalAutoencoder
from tests.helpers import decodes_into_unit_interval, starts_at_pca


@pytest.fixture(scope="module")
def pixels():
    """Blurry blobs in [0, 1], with exact zeros and ones, as float32."""
    rng = np.random.RandomState(0)
    centres = rng.uniform(size=(3, 12))
    X = centres[rng.randint(3, size=150)] + 0.1 * rng.normal(size=(150, 12))
    return np.clip(X, 0, 1).astype(np.float32)


def tutorial(**params):
    """A small version of the Keras tutorial's dense model."""
    return AutoencoderTransformer(
        **{
            "n_components": 3,
            "hidden_layer_sizes": (8,),
            "code_activation": "relu",
            "loss": "binary_crossentropy",
            "max_iter": 5,
            "random_state": 0,
            **params,
        }
    )


@pytest.fixture(scope="module")
def fitted_tutorial(pixels):
    return tutorial(max_iter=60, batch_size=32, learning_rate_init=0.01).fit(pixels)


def binary_cross_entropy(X, probabilities):
    X, probabilities = np.float64(X), np.float64(probabilities)
    return float(
        -np.mean(X * np.log(probabilities) + (1 - X) * np.log1p(-probabilities))
    )


@pytest.mark.parametrize("loss", ["squared_error", "binary_crossentropy"])
def test_loss_curve_is_in_the_units_of_the_loss(pixels, loss):
    """With steps too small to move the weights, the curve is the fitted loss."""
    ae = tutorial(loss=loss, max_iter=1, learning_rate_init=1e-9, early_stopping=False)
    reconstructions = ae.fit(pixels).inverse_transform(ae.transform(pixels))
    if loss == "binary_crossentropy":
        expected = binary_cross_entropy(pixels, reconstructions)
    else:
        expected = -ae.score(pixels)
    assert ae.loss_curve_[0] == pytest.approx(expected, rel=1e-4)
    assert ae.best_loss_ == ae.loss_curve_[0]


def test_the_loss_changes_the_fit(pixels):
    squared, cross_entropy = (
        tutorial(loss=loss).fit(pixels)
        for loss in ("squared_error", "binary_crossentropy")
    )
    assert not np.allclose(squared.transform(pixels), cross_entropy.transform(pixels))
    assert decodes_into_unit_interval(cross_entropy)
    assert not decodes_into_unit_interval(squared)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_reconstructions_are_probabilities(fitted_tutorial, dtype):
    """A sigmoid in input units: any code, however far out, decodes into [0, 1]."""
    codes = 1e3 * np.random.RandomState(0).normal(size=(50, 3)).astype(dtype)
    reconstructions = fitted_tutorial.inverse_transform(codes)
    assert reconstructions.dtype == dtype
    assert reconstructions.min() >= 0 and reconstructions.max() <= 1
    assert reconstructions.min() < 1e-3 and reconstructions.max() > 1 - 1e-3


def test_cross_entropy_fits_pixels(fitted_tutorial, pixels):
    """Training lowers the cross-entropy towards its floor, and the squared error."""
    entropy = binary_cross_entropy(
        pixels, np.clip(np.float64(pixels), 1e-12, 1 - 1e-12)
    )
    first, last = fitted_tutorial.loss_curve_[0], fitted_tutorial.loss_curve_[-1]
    assert last - entropy < 0.8 * (first - entropy)
    assert (
        fitted_tutorial.best_validation_score_ > fitted_tutorial.validation_scores_[0]
    )
    total = np.mean((pixels - pixels.mean(axis=0)) ** 2)
    assert -fitted_tutorial.score(pixels) < 0.6 * total


@pytest.mark.parametrize(
    ("code_activation", "low", "high"),
    [("relu", 0, np.inf), ("tanh", -1, 1), ("logistic", 0, 1)],
)
def test_code_activation_bounds_the_codes(pixels, code_activation, low, high):
    ae = tutorial(loss="squared_error", code_activation=code_activation).fit(pixels)
    codes = ae.transform(10 * pixels)
    assert low <= codes.min() and codes.max() <= high
    if code_activation == "relu":
        assert (codes == 0).any()


def test_identity_codes_are_unbounded(pixels):
    codes = tutorial(loss="squared_error", code_activation="identity").fit(pixels)
    assert codes.transform(pixels).min() < 0


@pytest.mark.parametrize(
    ("params", "from_pca"),
    [
        ({"loss": "squared_error", "code_activation": "identity"}, True),
        ({"loss": "squared_error", "code_activation": "relu"}, False),
        ({"loss": "binary_crossentropy", "code_activation": "identity"}, False),
    ],
)
def test_pca_start_only_for_networks_that_can_be_pca(pixels, params, from_pca):
    """A code activation or a sigmoid output cannot compute PCA's reconstruction.

    The network then starts from random weights, and the start does not
    compete with the epochs for the held-out rows.
    """
    ae = tutorial(init="pca", learning_rate_init=0.3, **params)
    assert starts_at_pca(ae, pixels) is from_pca
    ae.fit(pixels)
    if not from_pca:
        assert ae.best_validation_score_ == max(ae.validation_scores_)


@pytest.mark.parametrize(
    ("shift", "scale", "problem"),
    [(-0.5, 1.0, "Negative values"), (0.0, 2.0, "Values above 1")],
)
def test_cross_entropy_refuses_data_outside_the_unit_interval(
    pixels, shift, scale, problem
):
    X_bad = pixels * scale + shift
    message = (
        f"{problem} in data passed to AutoencoderTransformer with "
        "loss='binary_crossentropy', which needs X in \\[0, 1\\]; got values from"
    )
    with pytest.raises(ValueError, match=message):
        tutorial().fit(X_bad)
    with pytest.raises(ValueError, match=message):
        tutorial().partial_fit(X_bad)
    with pytest.raises(ValueError, match="Negative values in data"):
        VariationalAutoencoder(loss="binary_crossentropy", max_iter=1).fit(-pixels)


def test_changing_the_loss_needs_a_new_network(fitted_tutorial, pixels):
    ae = copy.deepcopy(fitted_tutorial)
    ae.set_params(warm_start=True, loss="squared_error")
    with pytest.raises(ValueError, match=r"after changing \['loss'\]"):
        ae.fit(pixels)


def test_cross_entropy_trains_on_the_extremes(pixels):
    """Targets of exactly 0 and 1 give a finite loss (computed from logits)."""
    binary = (pixels > 0.5).astype(np.float64)
    ae = tutorial(learning_rate_init=0.05, max_iter=20).fit(binary)
    assert np.isfinite(ae.loss_curve_).all()
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


def test_sigmoid_decoder_standardises_like_the_input(fitted_tutorial, pixels):
    """In network units the decoder compares with standardised input."""
    decoder = fitted_tutorial._network.decoder
    assert torch.equal(
        decoder.mean, torch.as_tensor(fitted_tutorial.mean_, dtype=torch.float32)
    )
    assert float(decoder.scale) == pytest.approx(fitted_tutorial.scale_)
    codes = torch.as_tensor(fitted_tutorial.transform(pixels))
    with torch.no_grad():
        standardised = decoder(codes)
        probabilities = decoder.probabilities()(codes)
    np.testing.assert_allclose(
        standardised * decoder.scale + decoder.mean, probabilities, atol=1e-6
    )
    assert float(F.binary_cross_entropy(probabilities, torch.as_tensor(pixels))) == (
        pytest.approx(binary_cross_entropy(pixels, probabilities.numpy()), rel=1e-4)
    )


@pytest.mark.parametrize(
    "estimator",
    [
        tutorial(dropout=0.5),
        VariationalAutoencoder(
            n_components=2,
            hidden_layer_sizes=(8,),
            loss="binary_crossentropy",
            max_iter=3,
            random_state=0,
        ),
    ],
    ids=["tutorial", "variational"],
)
def test_save_and_load_round_trip_the_loss(tmp_path, pixels, estimator):
    fitted = estimator.fit(pixels)
    path = tmp_path / "model.safetensors"
    skae.save(fitted, path)
    loaded = skae.load(path)
    assert loaded.get_params()["loss"] == "binary_crossentropy"
    assert loaded.get_params().get("code_activation") == fitted.get_params().get(
        "code_activation"
    )
    assert decodes_into_unit_interval(loaded)
    codes = fitted.transform(pixels)
    np.testing.assert_array_equal(loaded.transform(pixels), codes)
    np.testing.assert_array_equal(
        loaded.inverse_transform(codes), fitted.inverse_transform(codes)
    )
    # Training goes on from the loaded state, with the same loss and checks.
    loaded.set_params(warm_start=True, max_iter=1).fit(pixels)
    with pytest.raises(ValueError, match="Values above 1"):
        loaded.fit(pixels + 1)


def test_loaded_network_takes_the_standardisation_of_its_attributes(
    tmp_path, fitted_tutorial, pixels
):
    """The decoder's copy of mean_ and scale_ cannot disagree with them."""
    path = tmp_path / "model.safetensors"
    skae.save(fitted_tutorial, path)
    loaded = skae.load(path)
    decoder = loaded._network.decoder
    assert torch.equal(decoder.mean, torch.as_tensor(loaded.mean_, dtype=torch.float32))
    assert float(decoder.scale) == pytest.approx(loaded.scale_)
