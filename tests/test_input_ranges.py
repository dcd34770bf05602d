"""The residuals' input ranges: rows far outside the training rows stay bounded."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, load, save
from skae._networks import RANGE_MARGIN, UNBOUNDED, linear_paths


def curved_data(n_samples=400, seed=0):
    """Two latent coordinates on a curved surface in 6 columns: training wins."""
    rng = np.random.RandomState(seed)
    t = rng.uniform(-2, 2, size=(n_samples, 2))
    a, b = t.T
    X = np.column_stack([a, b, a**2, b**2, a * b, np.sin(a)])
    return X + 0.05 * rng.normal(size=X.shape)


def row_errors(model, X):
    return np.sum((model.inverse_transform(model.transform(X)) - X) ** 2, axis=1)


@pytest.fixture(scope="module")
def fitted():
    X = curved_data()
    model = AutoencoderTransformer(n_components=2, random_state=0).fit(X)
    assert (
        model.n_iter_ > 1
        and row_errors(model, X).mean() < 0.1 * row_errors(PCA(2).fit(X), X).mean()
    ), "training should win on this surface"
    return model, X


def reloaded(model, tmp_path):
    """A copy of the model, through a model file."""
    path = tmp_path / "model.safetensors"
    save(model, path)
    return load(path)


def unbounded_copy(model, tmp_path):
    """The same fitted model with its residuals reading every input unclipped."""
    copy = reloaded(model, tmp_path)
    for linear_path in linear_paths(copy._network):
        linear_path.input_range.unbound()
    return copy


def far_rows(X):
    """Rows 30 standard deviations out along each principal axis, both ways."""
    axes = PCA(2).fit(X).components_
    directions = np.vstack([axes, -axes]) * X.std(axis=0)
    return X.mean(axis=0) + 30 * directions / np.abs(directions).max(axis=1)[:, None]


def test_far_rows_are_reconstructed_without_runaway_corrections(fitted, tmp_path):
    """Unclipped, the activations extrapolate a correction larger than the row."""
    model, X = fitted
    far = far_rows(X)
    distance = np.sum((far - X.mean(axis=0)) ** 2, axis=1)
    clipped = row_errors(model, far)
    unclipped = row_errors(unbounded_copy(model, tmp_path), far)
    assert np.all(clipped < 0.15 * distance)
    assert np.all(clipped < 0.15 * unclipped)


def test_ranges_change_no_output_within_the_training_rows(fitted, tmp_path):
    model, X = fitted
    unbounded = unbounded_copy(model, tmp_path)
    np.testing.assert_array_equal(model.transform(X), unbounded.transform(X))
    codes = model.transform(X)
    np.testing.assert_array_equal(
        model.inverse_transform(codes), unbounded.inverse_transform(codes)
    )


def assert_ranges_fit(model, X):
    """The ranges of X's standardised rows and codes, widened by RANGE_MARGIN."""
    encoder_path, decoder_path = linear_paths(model._network)
    for inputs, input_range in (
        ((X - model.mean_) / model.scale_, encoder_path.input_range),
        (model.transform(X), decoder_path.input_range),
    ):
        low, high = inputs.min(axis=0), inputs.max(axis=0)
        margin = RANGE_MARGIN * (high - low)
        tolerance = {"rtol": 1e-4, "atol": 1e-4}
        np.testing.assert_allclose(input_range.low, low - margin, **tolerance)
        np.testing.assert_allclose(input_range.high, high + margin, **tolerance)


def test_ranges_are_those_of_the_training_rows_and_their_codes(fitted):
    assert_ranges_fit(*fitted)


def test_warm_start_fits_the_ranges_again_and_partial_fit_drops_them():
    X = curved_data()
    model = AutoencoderTransformer(
        n_components=2, max_iter=3, warm_start=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
        model.fit(X[:100])
    assert_ranges_fit(model, X[:100])
    model.partial_fit(X)
    for linear_path in linear_paths(model._network):
        assert bool((linear_path.input_range.low == -UNBOUNDED).all())
        assert bool((linear_path.input_range.high == UNBOUNDED).all())


@pytest.mark.parametrize("end", ["low", "high"])
def test_file_with_crossed_bounds_is_refused(fitted, tmp_path, end):
    model, _ = fitted
    edited = reloaded(model, tmp_path)
    input_range = linear_paths(edited._network)[1].input_range
    low, high = input_range.low.clone(), input_range.high.clone()
    with torch.no_grad():
        if end == "low":
            input_range.low.copy_(high + 1)
        else:
            input_range.high.copy_(low - 1)
    path = tmp_path / "edited.safetensors"
    save(edited, path)
    with pytest.raises(ValueError, match="low bound above its high one"):
        load(path)
