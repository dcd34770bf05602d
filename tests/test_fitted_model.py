"""What a fitted model tells, and what a fit refuses to learn."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from torch import nn

import skae
import skae._fitting
from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from skae._fitted_state import check_fitted_state
from tests.helpers import low_rank_data

MODEL_FILES = Path(__file__).resolve().parent / "model_files"

pytestmark = pytest.mark.usefixtures("one_torch_thread")

X_SMALL = low_rank_data(40, 4, rank=2, noise=0.1)


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderTransformer(n_components=5, max_iter=1),
        VariationalAutoencoder(n_components=5, kl_weight=0.0, max_iter=1),
        AutoencoderOutlierDetector(AutoencoderTransformer(n_components=5, max_iter=1)),
    ],
    ids=["autoencoder", "variational-without-kl", "detector"],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_code_wider_than_the_input_is_refused(estimator, method):
    if not hasattr(estimator, method):
        pytest.skip(f"{type(estimator).__name__} has no {method}")
    with pytest.raises(
        ValueError, match=r"^n_components=5 exceeds n_features=4: .* noise or sparsity"
    ):
        getattr(estimator, method)(X_SMALL)


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderTransformer(n_components=4, max_iter=1),
        AutoencoderTransformer(n_components=6, sparsity=0.1, max_iter=1),
        AutoencoderTransformer(n_components=6, noise="mask", max_iter=1),
        VariationalAutoencoder(n_components=6, max_iter=1),
    ],
    ids=["as-wide", "sparse", "denoising", "variational"],
)
def test_codes_a_term_shapes_may_be_wider_than_the_input(estimator):
    codes = estimator.fit(X_SMALL).transform(X_SMALL)
    assert codes.shape == (40, estimator.n_components)


def test_a_refused_refit_leaves_the_fitted_model_as_it_was():
    model = AutoencoderTransformer(n_components=2, max_iter=2).fit(X_SMALL)
    codes = model.transform(X_SMALL)
    with pytest.raises(ValueError, match="exceeds n_features"):
        model.set_params(n_components=5).fit(X_SMALL)
    np.testing.assert_array_equal(model.transform(X_SMALL), codes)


# -- reconstruction_r2_ and component_importances_ ---------------------------------

X_DIGITS = load_digits().data[:400]


def test_a_linear_pca_start_tells_what_pca_tells():
    """Held at PCA's solution, the importances are explained_variance_ratio_."""
    model = AutoencoderTransformer(
        5,
        hidden_layer_sizes=(),
        early_stopping=False,
        learning_rate_init=1e-12,
        max_iter=1,
        random_state=0,
    ).fit(X_DIGITS)
    pca = PCA(5).fit(X_DIGITS)
    np.testing.assert_allclose(
        model.component_importances_, pca.explained_variance_ratio_, rtol=1e-3
    )
    assert model.reconstruction_r2_ == pytest.approx(
        pca.explained_variance_ratio_.sum(), rel=1e-4
    )


def reconstruction_r2(model, X):
    X_back = model.inverse_transform(model.transform(X))
    return 1 - np.sum((X - X_back) ** 2) / np.sum((X - X.mean(axis=0)) ** 2)


def test_without_held_out_rows_r2_is_that_of_the_training_rows():
    model = AutoencoderTransformer(
        4,
        hidden_layer_sizes=(16,),
        early_stopping=False,
        max_iter=5,
        random_state=0,
    ).fit(X_DIGITS)
    assert model.reconstruction_r2_ == pytest.approx(
        reconstruction_r2(model, X_DIGITS), abs=1e-5
    )


def test_with_held_out_rows_r2_is_that_of_the_held_out_rows():
    """The held-out error that chose the model, over those rows' variance."""
    model = AutoencoderTransformer(
        4, hidden_layer_sizes=(16,), early_stopping=True, max_iter=5, random_state=0
    ).fit(X_DIGITS)
    # The split fit makes: a seed drawn first, then the rows held out.
    rng = np.random.RandomState(0)
    rng.randint(np.iinfo(np.int32).max)
    (fold,) = model._validation_folds(X_DIGITS, rng, incremental=False)
    X_valid = X_DIGITS[fold.valid_rows.numpy()]
    total = np.mean((X_valid - model.mean_) ** 2)
    assert model.reconstruction_r2_ == pytest.approx(
        1 + model.best_validation_score_ / total, rel=1e-6
    )


ORDERED = {
    "pca-start": AutoencoderTransformer(6, hidden_layer_sizes=(16,), max_iter=5),
    "random": AutoencoderTransformer(
        6, init="random", hidden_layer_sizes=(16,), code_activation="tanh", max_iter=5
    ),
    "convolutional": AutoencoderTransformer(
        4, image_shape=(1, 8, 8), conv_channels=(4,), hidden_layer_sizes=(), max_iter=3
    ),
    "cross-entropy": AutoencoderTransformer(
        4, hidden_layer_sizes=(16,), loss="binary_crossentropy", max_iter=3
    ),
    "variational": VariationalAutoencoder(4, hidden_layer_sizes=(16,), max_iter=5),
}


@pytest.mark.parametrize("name", list(ORDERED))
def test_columns_come_in_order_and_outputs_stay_exact(name, monkeypatch):
    X = X_DIGITS / 16
    model = clone(ORDERED[name]).set_params(random_state=0).fit(X)
    importances = model.component_importances_
    assert importances.shape == (model.n_components_,)
    assert np.all(np.diff(importances) <= 0)
    # The same fit, its columns left where training put them.
    monkeypatch.setattr(skae._fitting, "order_code_columns", lambda *args: False)
    unordered = clone(ORDERED[name]).set_params(random_state=0).fit(X)
    order = np.argsort(-unordered.component_importances_, kind="stable")
    np.testing.assert_allclose(importances, unordered.component_importances_[order])
    codes = model.transform(X)
    np.testing.assert_allclose(codes, unordered.transform(X)[:, order], atol=1e-5)
    np.testing.assert_allclose(
        model.inverse_transform(codes),
        unordered.inverse_transform(codes[:, np.argsort(order)]),
        atol=1e-5,
    )
    if name == "variational":
        return  # its training draws each code column's noise in column order
    # The solver's state moved with the weights: training resumes alike.
    model.partial_fit(X)
    unordered.partial_fit(X)
    np.testing.assert_allclose(
        model.transform(X), unordered.transform(X)[:, order], atol=1e-4
    )


def test_custom_networks_are_measured_but_keep_their_order():
    def network(n_features, n_outputs):
        return (
            nn.Sequential(nn.Linear(n_features, 8), nn.Tanh(), nn.Linear(8, n_outputs)),
            nn.Sequential(nn.Linear(n_outputs, 8), nn.Tanh(), nn.Linear(8, n_features)),
        )

    model = AutoencoderTransformer(3, network=network, max_iter=3, random_state=0).fit(
        X_DIGITS
    )
    assert model.component_importances_.shape == (3,)
    assert np.isfinite(model.reconstruction_r2_)


def test_partial_fit_measures_nothing(small_data):
    model = AutoencoderTransformer(2, hidden_layer_sizes=(8,), random_state=0)
    model.partial_fit(small_data)
    assert model.reconstruction_r2_ is None
    assert model.component_importances_ is None
    model.set_params(max_iter=2).fit(small_data)
    assert 0 < model.reconstruction_r2_ <= 1
    model.partial_fit(small_data)
    assert model.component_importances_ is None


def test_saved_models_keep_what_they_tell(tmp_path, fitted_small):
    skae.save(fitted_small, tmp_path / "model.safetensors")
    loaded = skae.load(tmp_path / "model.safetensors")
    assert loaded.reconstruction_r2_ == fitted_small.reconstruction_r2_
    np.testing.assert_array_equal(
        loaded.component_importances_, fitted_small.component_importances_
    )


def test_files_from_before_the_measures_load_without_them():
    path = MODEL_FILES / "AutoencoderTransformer-0.1.0.safetensors"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* was saved with ")
        model = skae.load(path)
    assert model.reconstruction_r2_ is None
    assert model.component_importances_ is None


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"reconstruction_r2_": 1.5}, "neither None nor a finite R"),
        ({"reconstruction_r2_": float("nan")}, "neither None nor a finite R"),
        ({"component_importances_": np.zeros(2)}, "shape \\(n_components_,\\)"),
        ({"component_importances_": np.full(3, np.inf)}, "holds NaN or inf"),
        ({"component_importances_": None}, "None exactly when reconstruction_r2_"),
    ],
    ids=["r2-above-1", "r2-nan", "wrong-shape", "inf", "half-missing"],
)
def test_loaded_measures_are_checked(fitted_small, changes, match):
    state = fitted_small._get_fitted_state()
    estimator = clone(fitted_small)
    derived = estimator._restore_fitted_state(dict(state.attributes), state.weights)
    with pytest.raises(ValueError, match=match):
        check_fitted_state(
            estimator, {**state.attributes, **changes}, derived, fitted=True
        )
