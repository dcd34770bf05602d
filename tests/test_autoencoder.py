"""Behaviour of AutoencoderTransformer: the sklearn face."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer
from tests.helpers import load_npz_images


def test_shapes_and_round_trip(fitted_small, small_data):
    codes = fitted_small.transform(small_data)
    assert codes.shape == (120, 3)
    reconstruction = fitted_small.inverse_transform(codes)
    assert reconstruction.shape == small_data.shape
    # Rank-3 data and a 3-wide code: the reconstruction explains most variance.
    residual = np.mean((reconstruction - small_data) ** 2)
    assert residual < 0.2 * np.var(small_data)


def test_score_is_negative_mean_squared_error(fitted_small, small_data):
    reconstruction = fitted_small.inverse_transform(fitted_small.transform(small_data))
    per_row = np.mean((reconstruction - small_data) ** 2, axis=1)
    np.testing.assert_allclose(
        fitted_small.score_samples(small_data), -per_row, rtol=1e-6
    )
    assert fitted_small.score(small_data) == pytest.approx(-per_row.mean(), rel=1e-6)


def test_inverse_transform_returns_input_units():
    """Standardisation is learnt in fit and undone by inverse_transform."""
    rng = np.random.RandomState(0)
    X = 1000.0 + 50.0 * rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6))
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(),
        batch_size=20,
        max_iter=100,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(X)
    reconstruction = ae.inverse_transform(ae.transform(X))
    np.testing.assert_allclose(ae.mean_, X.mean(axis=0))
    assert np.mean((reconstruction - X) ** 2) < 1e-3 * np.mean(np.var(X, axis=0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_input(fitted_small, small_data, dtype):
    X = small_data.astype(dtype)
    codes = fitted_small.transform(X)
    assert codes.dtype == dtype
    assert fitted_small.inverse_transform(codes).dtype == dtype


def test_fitted_attributes(small_data):
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=7,
        tol=0,
        early_stopping=False,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        ae.fit(small_data)
    assert ae.n_iter_ == 7
    assert len(ae.loss_curve_) == 7
    assert ae.best_loss_ == min(ae.loss_curve_)
    assert ae.validation_scores_ is None
    assert ae.n_features_in_ == 10
    assert isinstance(ae.encoder_, torch.nn.Module)
    codes = ae.encoder_(torch.as_tensor(small_data, dtype=torch.float32))
    # transform folds the standardisation into the first layers: other rounding.
    np.testing.assert_allclose(
        codes.detach().numpy(),
        ae.transform(small_data.astype(np.float32)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_early_stopping_keeps_best_validation_weights(small_data):
    ae = AutoencoderTransformer(
        n_components=2,
        init="random",
        hidden_layer_sizes=(8,),
        early_stopping=True,
        n_iter_no_change=2,
        learning_rate_init=0.05,
        max_iter=200,
        random_state=0,
    ).fit(small_data)
    assert ae.best_loss_ is None
    assert len(ae.validation_scores_) < 200
    # The best epoch's network goes on over every row for the held-out
    # rows' share of its epochs.
    best = int(np.argmax(ae.validation_scores_)) + 1
    n_held_out = int(np.ceil(ae.validation_fraction * small_data.shape[0]))
    share = n_held_out / small_data.shape[0]
    assert ae.n_iter_ == best + max(1, int(np.ceil(share * best)))
    assert ae.best_validation_score_ == max(ae.validation_scores_)


def test_tol_stops_training(small_data):
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        tol=10.0,
        n_iter_no_change=3,
        random_state=0,
    ).fit(small_data)
    # No epoch can improve by 10 times the data's variance: stop after 1 + 3 + 1.
    assert ae.n_iter_ == 5


def test_verbose_prints_losses(small_data, capsys):
    AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(4,),
        max_iter=2,
        early_stopping=True,
        verbose=True,
        random_state=0,
    ).fit(small_data)
    out = capsys.readouterr().out
    assert "Iteration 1, loss = " in out
    assert "Iteration 2, loss = " in out
    assert "Validation score: " in out


def test_same_random_state_gives_identical_results(small_data):
    # Random weights: on this nearly linear data the PCA start, the same for
    # every seed, would be kept.
    params = dict(
        n_components=2, init="random", hidden_layer_sizes=(8,), max_iter=5, dropout=0.1
    )
    first = AutoencoderTransformer(**params, random_state=3).fit_transform(small_data)
    second = AutoencoderTransformer(**params, random_state=3).fit_transform(small_data)
    other = AutoencoderTransformer(**params, random_state=4).fit_transform(small_data)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_fit_leaves_global_torch_rng_alone(small_data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AutoencoderTransformer(n_components=2, max_iter=2, random_state=0).fit(small_data)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_warm_start_continues_training(small_data):
    params = dict(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=5,
        early_stopping=False,
        random_state=0,
    )
    ae = AutoencoderTransformer(**params, warm_start=True).fit(small_data)
    first_curve = list(ae.loss_curve_)
    ae.fit(small_data)
    assert ae.n_iter_ == 10
    assert ae.loss_curve_[:5] == first_curve
    assert ae.loss_curve_[-1] < first_curve[0]
    ae.set_params(n_components=3)
    with pytest.raises(ValueError, match=r"after changing \['n_components'\]"):
        ae.fit(small_data)


def test_partial_fit_trains_one_epoch_per_call(small_data):
    ae = AutoencoderTransformer(
        n_components=2,
        init="random",
        hidden_layer_sizes=(8,),
        batch_size=20,
        random_state=0,
    )
    for _ in range(30):
        ae.partial_fit(small_data)
    assert ae.n_iter_ == 30
    assert len(ae.loss_curve_) == 30
    assert ae.loss_curve_[-1] < 0.5 * ae.loss_curve_[0]


def test_get_feature_names_out_and_pandas_output(fitted_small, small_data):
    expected = [f"autoencodertransformer{i}" for i in range(3)]
    assert list(fitted_small.get_feature_names_out()) == expected
    columns = [f"f{i}" for i in range(10)]
    frame = pd.DataFrame(small_data, columns=columns)
    ae = clone(fitted_small).set_output(transform="pandas").fit(frame)
    np.testing.assert_array_equal(ae.feature_names_in_, columns)
    out = ae.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == expected


def test_pickle_and_joblib_round_trip(fitted_small, small_data, tmp_path):
    expected = fitted_small.transform(small_data)
    restored = pickle.loads(pickle.dumps(fitted_small))
    np.testing.assert_array_equal(restored.transform(small_data), expected)
    joblib.dump(fitted_small, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.transform(small_data), expected)
    np.testing.assert_array_equal(
        loaded.inverse_transform(expected), fitted_small.inverse_transform(expected)
    )


def test_clone_gives_unfitted_copy_with_same_params(fitted_small):
    cloned = clone(fitted_small)
    assert cloned.get_params() == fitted_small.get_params()
    assert not hasattr(cloned, "encoder_")


def test_linear_autoencoder_spans_pca_subspace(small_data):
    """With no hidden layers, the optimum is PCA's reconstruction."""
    ae = AutoencoderTransformer(
        n_components=3,
        hidden_layer_sizes=(),
        batch_size=16,
        max_iter=200,
        tol=0,
        learning_rate_init=0.01,
        random_state=0,
    )
    ae.fit(small_data)
    pca = PCA(3).fit(small_data)
    pca_error = np.mean(
        (pca.inverse_transform(pca.transform(small_data)) - small_data) ** 2
    )
    # PCA is the optimum on its training data; SGD gets close, never below.
    assert pca_error * (1 - 1e-6) <= -ae.score(small_data) < 1.25 * pca_error


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected(small_data, value):
    X = small_data.copy()
    X[3, 4] = value
    with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity)"):
        AutoencoderTransformer(max_iter=1).fit(X)


def test_transform_before_fit_raises(small_data):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        AutoencoderTransformer().transform(small_data)


def test_wrong_number_of_features(fitted_small, small_data):
    with pytest.raises(
        ValueError, match="X has 9 features, but AutoencoderTransformer"
    ):
        fitted_small.transform(small_data[:, :9])
    with pytest.raises(
        ValueError, match=r"expects 3 columns \(n_components=3\), got 2"
    ):
        fitted_small.inverse_transform(np.zeros((4, 2)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"n_components": 0},
            "'n_components' parameter .* must be an int in the range",
        ),
        ({"activation": "swish"}, "'activation' parameter .* must be a str among"),
        ({"solver": "lbfgs"}, "'solver' parameter"),
        ({"dropout": 1.0}, "'dropout' parameter"),
        ({"learning_rate_init": 0.0}, "'learning_rate_init' parameter"),
        (
            {"hidden_layer_sizes": (8, -1)},
            "hidden_layer_sizes must be a sequence of positive",
        ),
        ({"device": "tpu"}, "device='tpu' is not a valid torch device"),
    ],
)
def test_invalid_parameters(small_data, params, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(max_iter=1, **params).fit(small_data)


def test_early_stopping_needs_enough_samples():
    with pytest.raises(ValueError, match="cannot split n_samples=1"):
        AutoencoderTransformer(early_stopping=True).fit(np.ones((1, 3)))


def test_divergence_is_an_error_and_keeps_the_fitted_model(small_data):
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=3,
        random_state=0,
        warm_start=True,
    ).fit(small_data)
    before = ae.transform(small_data)
    ae.set_params(solver="sgd", learning_rate_init=1e6, max_iter=20)
    with pytest.raises(ValueError, match="Training diverged"):
        ae.fit(small_data * 1e3)
    np.testing.assert_array_equal(ae.transform(small_data), before)
    assert ae.n_iter_ == 3


def test_failed_refit_leaves_fitted_model_unchanged(small_data):
    frame = pd.DataFrame(small_data, columns=[f"f{i}" for i in range(10)])
    ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(frame)
    state = dict(ae.__dict__)
    before = ae.transform(frame)
    bad = small_data[:, :5].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ae.fit(bad)
    with pytest.raises(ValueError, match="NaN"):
        ae.partial_fit(frame.assign(f0=np.nan))
    with pytest.raises(ValueError, match="features"):
        ae.transform(small_data[:, :5])
    assert ae.__dict__.keys() == state.keys()
    assert all(ae.__dict__[key] is value for key, value in state.items())
    np.testing.assert_array_equal(ae.transform(frame), before)


# -- real data -------------------------------------------------------------------


def test_beats_pca_on_digits_with_defaults(digits):
    X_train, X_test, _, _ = digits
    ae = AutoencoderTransformer(n_components=8, random_state=0).fit(X_train)
    pca = PCA(8).fit(X_train)
    pca_error = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    assert -ae.score(X_test) < pca_error


def test_pipeline_with_classifier_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    pipeline = make_pipeline(
        StandardScaler(),
        AutoencoderTransformer(n_components=16, max_iter=40, random_state=0),
        LogisticRegression(max_iter=2000),
    )
    pipeline.fit(X_train, y_train)
    assert pipeline.score(X_test, y_test) > 0.9


def test_column_transformer(small_data):
    frame = pd.DataFrame(small_data, columns=[f"f{i}" for i in range(10)])
    columns = ColumnTransformer(
        [
            (
                "ae",
                AutoencoderTransformer(2, max_iter=2, random_state=0),
                ["f0", "f1", "f2"],
            )
        ],
        remainder="passthrough",
    )
    out = columns.fit_transform(frame)
    assert out.shape == (120, 2 + 7)
    assert list(columns.get_feature_names_out()[:2]) == [
        "ae__autoencodertransformer0",
        "ae__autoencodertransformer1",
    ]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_unsupervised_grid_search_prefers_larger_codes(digits, n_jobs):
    X_train, X_test, _, _ = digits
    search = GridSearchCV(
        AutoencoderTransformer(max_iter=15, random_state=0),
        {"n_components": [2, 12], "hidden_layer_sizes": [(64,), (128, 64)]},
        cv=3,
        n_jobs=n_jobs,
    )
    search.fit(X_train)
    assert search.best_params_["n_components"] == 12
    # Scores are negative mean squared reconstruction errors: every candidate
    # reconstructs held-out folds better than their feature means would.
    mean_only_error = np.mean(np.var(X_train, axis=0))
    scores = search.cv_results_["mean_test_score"]
    assert np.all((-mean_only_error < scores) & (scores < 0))
    ae = search.best_estimator_
    error = np.mean((ae.inverse_transform(ae.transform(X_test)) - X_test) ** 2)
    assert search.score(X_test) == pytest.approx(-error, rel=1e-6)


def test_grid_search_with_downstream_classifier(digits):
    X_train, X_test, y_train, y_test = digits
    pipeline = make_pipeline(
        AutoencoderTransformer(max_iter=30, random_state=0),
        LogisticRegression(max_iter=2000),
    )
    search = GridSearchCV(
        pipeline,
        {"autoencodertransformer__n_components": [2, 16]},
        cv=3,
        n_jobs=2,
    )
    search.fit(X_train, y_train)
    assert search.best_params_["autoencodertransformer__n_components"] == 16
    assert search.score(X_test, y_test) > 0.9


def test_beats_pca_on_mnist():
    X_train, _, X_test, _ = load_npz_images("mnist", 10000, 2000)
    ae = AutoencoderTransformer(n_components=16, max_iter=15, random_state=0)
    ae.fit(X_train)
    pca = PCA(16, random_state=0).fit(X_train)
    pca_error = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    ae_error = -ae.score(X_test)
    assert ae_error < pca_error
    assert ae.transform(X_test).dtype == np.float32


def test_auto_max_iter_plans_a_step_budget():
    ae = AutoencoderTransformer()
    # 60,000 MNIST rows train on 54,000 once a tenth is held out: 17 epochs.
    assert ae._training_config(54000, 1.0, incremental=False).max_iter == 17
    assert ae._training_config(60000, 1.0, incremental=False).max_iter == 15
    assert ae._training_config(1000, 1.0, incremental=False).max_iter == 200
    assert ae._training_config(10**7, 1.0, incremental=False).max_iter == 10
    streaming = ae._training_config(60000, 1.0, incremental=True)
    assert (streaming.max_iter, streaming.learning_rate) == (1, "constant")
    assert ae.set_params(max_iter=7)._training_config(60000, 1.0, False).max_iter == 7


def test_cosine_schedule_anneals_and_partial_fit_resumes(small_data):
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=20,
        tol=0,
        early_stopping=False,
        random_state=0,
    )
    ae.fit(small_data)
    assert ae._optimizer_state["param_groups"][0]["lr"] < 1e-6
    before = ae.score(small_data)
    for _ in range(20):
        ae.partial_fit(small_data)
    # Streaming resumes at learning_rate_init, not at the schedule's final zero.
    assert ae.score(small_data) > before
