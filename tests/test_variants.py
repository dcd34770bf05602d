"""The autoencoder family: each variant keeps the contract and proves its promise.

Convolutional, denoising, sparse and custom networks are configurations of
AutoencoderTransformer; VariationalAutoencoder and AutoencoderOutlierDetector are
estimators of their own. Real-data claims run on scikit-learn's digits, or on
MNIST subsets where the claim is about MNIST (skipped when MNIST is absent).
"""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from torch import nn

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from skae._networks import code_sparsity_penalty
from tests.helpers import assert_unchanged, load_npz_images, snapshot

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
]


def reconstruction_error(model, X_input, X_target):
    """Mean squared error between the reconstruction of X_input and X_target."""
    return np.mean((model.inverse_transform(model.transform(X_input)) - X_target) ** 2)


# -- convolutional -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "max_iter"),
    [({}, 20), ({"hidden_layer_sizes": (256,)}, 10)],
    ids=["defaults-20-epochs", "one-hidden-layer-10-epochs"],
)
def test_convolutional_beats_dense_on_mnist(params, max_iter):
    """Same parameters, data and epochs, and a 16-number code: convolutions win.

    With the default two hidden layers, the convolutional network needs about
    20 epochs of 5000 images to pull ahead; with one, 10 suffice.
    """
    X_train, _, X_test, _ = load_npz_images("mnist", 5000, 2000)
    budget = {"n_components": 16, "max_iter": max_iter, "random_state": 0, **params}
    dense = AutoencoderTransformer(**budget).fit(X_train)
    conv = AutoencoderTransformer(image_shape=(1, 28, 28), **budget).fit(X_train)
    assert conv.n_iter_ == dense.n_iter_ == max_iter
    assert -conv.score(X_test) < 0.97 * -dense.score(X_test)


def test_convolutional_rows_in_rows_out_in_a_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    conv = AutoencoderTransformer(
        n_components=8,
        image_shape=(1, 8, 8),
        conv_channels=(8, 16),
        hidden_layer_sizes=(64,),
        max_iter=20,
        random_state=0,
    )
    pipeline = make_pipeline(conv, LogisticRegression(max_iter=2000))
    pipeline.fit(X_train, y_train)
    assert pipeline.score(X_test, y_test) > 0.7
    assert any(isinstance(m, nn.Conv2d) for m in conv.encoder_.modules())
    assert any(isinstance(m, nn.ConvTranspose2d) for m in conv.decoder_.modules())
    codes = conv.transform(X_test)
    assert codes.shape == (len(X_test), 8)
    assert conv.inverse_transform(codes).shape == X_test.shape


def test_image_shape_infers_one_entry(digits):
    X_train = digits[0][:200]
    shapes = [(1, 8, 8), (-1, 8, 8), (1, -1, 8), (1, 8, -1)]
    codes = [
        AutoencoderTransformer(
            2, image_shape=shape, conv_channels=(4,), max_iter=2, random_state=0
        )
        .fit(X_train)
        .transform(X_train)
        for shape in shapes
    ]
    for other in codes[1:]:
        np.testing.assert_array_equal(other, codes[0])


@pytest.mark.parametrize(
    ("image_shape", "match"),
    [
        ((1, 8, 7), r"product equal to n_features=64"),
        ((1, -1, 7), r"image_shape=\(1, -1, 7\) must be \(channels, height, width\)"),
        ((8, 8), r"must be \(channels, height, width\)"),
        ((1, -1, -1), "positive ints"),
        ((1, 0, 64), "positive ints"),
    ],
)
def test_image_shape_mismatch_is_a_clear_error(digits, image_shape, match):
    fitted = AutoencoderTransformer(2, max_iter=1, random_state=0).fit(digits[0])
    before = snapshot(fitted)
    with pytest.raises(ValueError, match=match):
        fitted.set_params(image_shape=image_shape).fit(digits[0])
    fitted.set_params(image_shape=None)
    assert_unchanged(fitted, before)


def test_grid_search_over_convolution_channels(digits):
    X_train = digits[0][:300]
    search = GridSearchCV(
        AutoencoderTransformer(
            4, image_shape=(1, 8, 8), hidden_layer_sizes=(32,), max_iter=3
        ),
        {"conv_channels": [(4,), (4, 8)], "random_state": [0]},
        cv=2,
    ).fit(X_train)
    assert search.best_params_["conv_channels"] in [(4,), (4, 8)]
    assert np.all(search.cv_results_["mean_test_score"] < 0)


# -- denoising -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_reconstructors(digits):
    """PCA, a plain autoencoder and two denoising ones, fitted on clean digits."""
    X_train = digits[0]
    options = {"n_components": 8, "max_iter": 60, "random_state": 0}
    return {
        "pca": PCA(8, random_state=0).fit(X_train),
        "plain": AutoencoderTransformer(**options).fit(X_train),
        "gaussian": AutoencoderTransformer(
            noise="gaussian", noise_level=1.0, **options
        ).fit(X_train),
        "mask": AutoencoderTransformer(noise="mask", noise_level=0.5, **options).fit(
            X_train
        ),
    }


def gaussian_noise(X, X_train, rng):
    """Add noise of standard deviation 0.3 (pixels range over [0, 1])."""
    return X + 0.3 * rng.normal(size=X.shape)


def missing_pixels(X, X_train, rng):
    """Lose half the pixels, filled with the training mean of each pixel."""
    return np.where(rng.rand(*X.shape) < 0.5, X_train.mean(axis=0), X)


@pytest.mark.parametrize(
    ("noise", "corrupt"), [("gaussian", gaussian_noise), ("mask", missing_pixels)]
)
def test_denoising_restores_digits_better_than_plain_and_pca(
    digits, digit_reconstructors, noise, corrupt
):
    X_train, X_test, _, _ = digits
    X_noisy = corrupt(X_test, X_train, np.random.RandomState(0))
    errors = {
        name: reconstruction_error(model, X_noisy, X_test)
        for name, model in digit_reconstructors.items()
    }
    assert errors[noise] < 0.85 * errors["plain"]
    assert errors[noise] < 0.85 * errors["pca"]


def test_grid_search_over_corruption_and_sparsity(digits):
    """Judged on clean data, light corruption and no penalty reconstruct best."""
    search = GridSearchCV(
        # Every candidate trains on all its rows (sparse fits hold none out).
        AutoencoderTransformer(
            4,
            hidden_layer_sizes=(64,),
            max_iter=15,
            early_stopping=False,
            random_state=0,
        ),
        {"noise": ["gaussian", "mask"], "noise_level": [0.05, 0.9], "sparsity": [0, 3]},
        cv=2,
    ).fit(digits[0][:600])
    assert search.best_params_["noise_level"] == 0.05
    assert search.best_params_["sparsity"] == 0


# -- sparse codes --------------------------------------------------------------------


def near_zero_fraction(Z):
    """Share of code entries below a tenth of their dimension's root mean square."""
    return np.mean(np.abs(Z) < 0.1 * np.sqrt(np.mean(Z**2, axis=0)))


def test_sparsity_penalty_is_blind_to_code_scale():
    codes = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    penalty = code_sparsity_penalty(codes)
    scaled = codes * torch.tensor([1e-2, 0.1, 1.0, 3.0, 10.0])
    torch.testing.assert_close(
        code_sparsity_penalty(scaled), penalty, rtol=1e-2, atol=0
    )
    torch.testing.assert_close(
        code_sparsity_penalty(codes * 1e-2), penalty, rtol=1e-3, atol=0
    )
    # A dimension a million times smaller than the rest no longer counts.
    faded = codes * torch.tensor([1e-6, 1.0, 1.0, 1.0, 1.0])
    assert code_sparsity_penalty(faded) < 0.85 * penalty
    # One large entry per dimension scores lower than spread-out values.
    peaked = torch.zeros(64, 5)
    peaked[0] = 1.0
    assert code_sparsity_penalty(peaked) < 0.2 < penalty


def test_sparsity_makes_codes_sparse_at_a_small_cost(digits):
    """More penalty, more near-zero code entries; error within 1.5x of none."""
    X_train, X_test, _, _ = digits
    fractions, errors = [], []
    for sparsity in (0.0, 0.1, 0.3):
        ae = AutoencoderTransformer(
            16, sparsity=sparsity, max_iter=60, random_state=0
        ).fit(X_train)
        fractions.append(near_zero_fraction(ae.transform(X_test)))
        errors.append(-ae.score(X_test))
    assert fractions[0] < fractions[1] < fractions[2]
    assert fractions[2] > 3 * fractions[0]
    assert max(errors) < 1.5 * errors[0]


# -- variational ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_vae(digits):
    return VariationalAutoencoder(4, max_iter=40, random_state=0).fit(digits[0])


def test_variational_parameters_mirror_the_autoencoder():
    """Every parameter but sparsity, init and code_activation, plus kl_weight.

    The defaults are the same, but for the variational network's own start:
    random weights, ReLU, trained on all rows.
    """
    ours = VariationalAutoencoder().get_params()
    theirs = AutoencoderTransformer().get_params()
    assert ours.pop("kl_weight") == 1.0
    del theirs["sparsity"], theirs["init"], theirs["code_activation"]
    assert (ours.pop("early_stopping"), theirs.pop("early_stopping")) == (False, "auto")
    assert (ours.pop("activation"), theirs.pop("activation")) == ("relu", "gelu")
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert (
            np.asarray(ours[name], dtype=object).tolist()
            == np.asarray(value, dtype=object).tolist()
        ), name


def test_transform_returns_the_posterior_mean(digits, digits_vae):
    X_test = digits[1]
    standardized = torch.as_tensor(
        (X_test - digits_vae.mean_) / digits_vae.scale_, dtype=torch.float32
    )
    with torch.no_grad():
        posterior = digits_vae._network.encoder(standardized).numpy()
    codes = digits_vae.transform(X_test.astype(np.float32))
    assert posterior.shape == (len(X_test), 8)
    np.testing.assert_allclose(codes, posterior[:, :4], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        digits_vae.transform(X_test), digits_vae.transform(X_test)
    )


def test_codes_follow_the_prior(digits, digits_vae):
    """Training pulls the posterior means towards the standard normal prior."""
    codes = digits_vae.transform(digits[0])
    assert np.all(np.abs(codes.mean(axis=0)) < 0.5)
    assert np.all(codes.std(axis=0) < 1.5)


def test_sample_is_in_input_units(digits_vae):
    samples = digits_vae.sample(2000, random_state=0)
    assert samples.shape == (2000, 64)
    assert samples.dtype == np.float64
    # Pixels of the training digits lie in [0, 1]; so do most generated ones.
    assert np.mean((samples > -0.1) & (samples < 1.1)) > 0.95
    mean_gap = np.abs(samples.mean(axis=0) - digits_vae.mean_)
    assert mean_gap.mean() < 0.25 * digits_vae.scale_


def test_sample_in_units_of_raw_data(digits):
    X_raw = 1000.0 + 50.0 * digits[0]
    vae = VariationalAutoencoder(2, max_iter=20, random_state=0).fit(X_raw)
    samples = vae.sample(500, random_state=0)
    assert np.abs(samples.mean() - X_raw.mean()) < 0.2 * X_raw.std()
    assert 0.3 * X_raw.std() < samples.std() < 2 * X_raw.std()


def test_sample_random_state(digits_vae):
    first = digits_vae.sample(5, random_state=0)
    np.testing.assert_array_equal(first, digits_vae.sample(5, random_state=0))
    assert not np.array_equal(first, digits_vae.sample(5, random_state=1))
    rng = np.random.RandomState(0)
    assert not np.array_equal(
        digits_vae.sample(5, random_state=rng), digits_vae.sample(5, random_state=rng)
    )


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, True, "3", None])
def test_sample_rejects_bad_n_samples(digits_vae, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        digits_vae.sample(n_samples)


def test_sample_in_batches_equals_one_draw(digits_vae):
    """Batched generation draws and decodes exactly what one draw would."""
    n_samples = 70_000  # more than one batch
    codes = np.random.RandomState(0).standard_normal(size=(n_samples, 4))
    np.testing.assert_array_equal(
        digits_vae.sample(n_samples, random_state=0),
        digits_vae.inverse_transform(codes),
    )


def test_sample_refuses_more_than_memory_holds(digits_vae):
    with pytest.raises(ValueError, match=r"would return 476\.8 GiB .*draw fewer"):
        digits_vae.sample(10**9)


def test_nan_weights_are_blamed_on_the_weights_not_on_x(digits, digits_vae):
    model = copy.deepcopy(digits_vae)
    with torch.no_grad():
        for part in (model._network.encoder, model._network.decoder):
            next(part.parameters())[0, 0] = float("nan")
    for method, X in ((model.transform, digits[0]), (model.sample, 3)):
        with pytest.raises(ValueError, match="weights hold NaN or inf") as error:
            method(X)
        assert "X holds" not in str(error.value)


def test_sample_before_fit():
    with pytest.raises(NotFittedError):
        VariationalAutoencoder().sample()


def test_kl_weight_reaches_the_loss(digits):
    X_train = digits[0][:200]
    curves = [
        VariationalAutoencoder(2, kl_weight=weight, max_iter=3, random_state=0)
        .fit(X_train)
        .loss_curve_
        for weight in (0.0, 1.0, 10.0)
    ]
    assert curves[0][0] < curves[1][0] < curves[2][0]


def test_vae_feature_names_and_pandas_output(digits_vae, digits):
    names = digits_vae.get_feature_names_out()
    assert list(names) == [f"variationalautoencoder{i}" for i in range(4)]
    frame_model = clone(digits_vae).set_params(max_iter=2)
    frame_model.set_output(transform="pandas")
    X = pd.DataFrame(digits[0][:100], columns=[f"pixel{i}" for i in range(64)])
    out = frame_model.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(names)


def test_grid_search_over_kl_weight(digits):
    """Without labels, the lighter prior reconstructs better and wins."""
    X_train = digits[0]
    search = GridSearchCV(
        VariationalAutoencoder(4, max_iter=20, random_state=0),
        {"kl_weight": [0.01, 3.0]},
        cv=2,
    ).fit(X_train)
    assert search.best_params_ == {"kl_weight": 0.01}


def test_vae_pickle_round_trip(digits_vae, digits):
    restored = pickle.loads(pickle.dumps(digits_vae))
    np.testing.assert_array_equal(
        restored.transform(digits[1]), digits_vae.transform(digits[1])
    )
    np.testing.assert_array_equal(
        restored.sample(3, random_state=0), digits_vae.sample(3, random_state=0)
    )


def confident_share(classifier, X, threshold=0.9):
    return np.mean(classifier.predict_proba(X).max(axis=1) >= threshold)


def test_generated_digits_are_recognised_far_more_often_than_noise():
    """A classifier of real MNIST digits is sure of generated ones, not of noise.

    The judge is a 10-nearest-neighbour classifier: "sure" means 9 or 10 of the
    10 nearest real digits share a label. (Logistic regression or an MLP is also
    confidently wrong on most uniform-noise images, so its confidence says
    little.)
    """
    X_train, y_train, _, _ = load_npz_images("mnist", 5000, 1)
    judge = KNeighborsClassifier(n_neighbors=10).fit(X_train, y_train)
    vae = VariationalAutoencoder(4, max_iter=20, random_state=0).fit(X_train)
    rng = np.random.RandomState(0)
    noise = {
        "uniform": rng.uniform(size=(1000, 784)),
        "pixel-gaussian": X_train.mean(axis=0)
        + X_train.std(axis=0) * rng.normal(size=(1000, 784)),
    }
    generated = confident_share(judge, vae.sample(1000, random_state=0))
    for X_noise in noise.values():
        assert generated > 3 * confident_share(judge, X_noise)
    assert generated > 0.2


# -- custom modules ------------------------------------------------------------------


class Residual(nn.Module):
    """x + f(x): a block the built-in networks do not have."""

    def __init__(self, width):
        super().__init__()
        self.block = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), nn.GELU()
        )

    def forward(self, x):
        return x + self.block(x)


def residual_network(n_features, n_outputs, width=32):
    """Factory for the ``network`` parameter: (encoder, decoder) for given widths."""
    encoder = nn.Sequential(
        nn.Linear(n_features, width), Residual(width), nn.Linear(width, n_outputs)
    )
    decoder = nn.Sequential(
        nn.Linear(n_outputs, width), Residual(width), nn.Linear(width, n_features)
    )
    return encoder, decoder


def test_custom_network_trains_stops_early_and_scores(digits):
    X_train, X_test, _, _ = digits
    ae = AutoencoderTransformer(
        8,
        network=residual_network,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=200,
        random_state=0,
    ).fit(X_train)
    assert any(isinstance(m, Residual) for m in ae.encoder_.modules())
    assert ae.n_iter_ < 200
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    pca = PCA(8).fit(X_train)
    assert -ae.score(X_test) < reconstruction_error(pca, X_test, X_test)


def variational_residual_network(n_features, n_outputs):
    """A VAE's encoder outputs means and log-variances: twice the code width."""
    encoder, _ = residual_network(n_features, n_outputs)
    _, decoder = residual_network(n_features, n_outputs // 2)
    return encoder, decoder


def test_custom_network_is_called_with_the_widths(digits):
    calls = []

    def network(n_features, n_outputs):
        calls.append((n_features, n_outputs))
        return residual_network(n_features, n_outputs)

    X_train = digits[0][:100]
    AutoencoderTransformer(3, network=network, max_iter=1).fit(X_train)
    with pytest.raises(ValueError, match="decoder cannot take input of width 3"):
        VariationalAutoencoder(3, network=network, max_iter=1).fit(X_train)
    # One network per fold of the cross-validation, one for the refit.
    assert set(calls) == {(64, 3), (64, 6)}
    vae = VariationalAutoencoder(
        3, network=variational_residual_network, max_iter=1
    ).fit(X_train)
    assert vae.transform(X_train).shape == (100, 3)
    assert vae.sample(2).shape == (2, 64)


def test_custom_network_pickles_warm_starts_and_grid_searches(digits):
    X_train, X_test, _, _ = digits
    ae = AutoencoderTransformer(
        4, network=residual_network, max_iter=5, random_state=0
    ).fit(X_train)
    restored = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(restored.transform(X_test), ae.transform(X_test))
    restored.set_params(warm_start=True).fit(X_train)
    # The second fit's epochs add to the first's.
    assert restored.n_iter_ > ae.n_iter_
    assert restored.loss_curve_[: ae.n_iter_] == ae.loss_curve_
    assert len(restored.loss_curve_) == restored.n_iter_
    search = GridSearchCV(
        AutoencoderTransformer(network=residual_network, max_iter=10, random_state=0),
        {"n_components": [2, 12]},
        cv=2,
    ).fit(X_train)
    assert search.best_params_ == {"n_components": 12}


# -- outlier detection ---------------------------------------------------------------


def tiny_autoencoder(**params):
    return AutoencoderTransformer(
        **{"n_components": 2, "hidden_layer_sizes": (8,), "max_iter": 5, **params},
        random_state=0,
    )


def test_outlier_api(small_data):
    detector = AutoencoderOutlierDetector(tiny_autoencoder(), contamination=0.2)
    labels = detector.fit_predict(small_data)
    scores = detector.score_samples(small_data)
    np.testing.assert_array_equal(scores, detector.estimator_.score_samples(small_data))
    np.testing.assert_allclose(
        detector.decision_function(small_data), scores - detector.offset_
    )
    assert detector.offset_ == pytest.approx(np.percentile(scores, 20))
    assert set(labels) == {-1, 1}
    assert np.mean(labels == -1) == pytest.approx(0.2, abs=1 / len(small_data))
    np.testing.assert_array_equal(labels, detector.predict(small_data))
    assert detector.estimator is not detector.estimator_


def test_outlier_default_estimator(small_data):
    detector = AutoencoderOutlierDetector().fit(small_data)
    assert type(detector.estimator_) is AutoencoderTransformer
    assert detector.estimator is None


class FixedScores(BaseEstimator):
    """An inner estimator whose scores have a chosen defect."""

    def __init__(self, defect=None):
        self.defect = defect

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def score_samples(self, X):
        n_samples = len(X)
        scores = -np.arange(n_samples, dtype=float)
        if self.defect == "nan":
            scores[3] = np.nan
        elif self.defect == "inf":
            scores[0] = -np.inf
        elif self.defect == "short":
            scores = scores[1:]
        elif self.defect == "2-d":
            scores = np.column_stack([scores, scores])
        elif self.defect == "strings":
            scores = scores.astype(str)
        return scores


OUTLIER_SCORE_DEFECTS = {
    "nan": r"FixedScores.score_samples returned NaN or infinite scores for 1 of",
    "inf": "NaN or infinite scores for 1 of",
    "short": r"shape \(119,\) for 120 samples",
    "2-d": r"shape \(120, 2\) for 120 samples; .* of shape \(120,\)",
    "strings": "returned <U32 scores; the detector needs real numbers",
}


@pytest.mark.parametrize("defect", OUTLIER_SCORE_DEFECTS, ids=str)
def test_outlier_detector_checks_inner_scores(small_data, defect):
    match = OUTLIER_SCORE_DEFECTS[defect]
    with pytest.raises(ValueError, match=match):
        AutoencoderOutlierDetector(FixedScores(defect)).fit(small_data)
    detector = AutoencoderOutlierDetector(FixedScores()).fit(small_data)
    assert np.isfinite(detector.offset_)
    detector.estimator_.defect = defect
    for method in (
        detector.score_samples,
        detector.decision_function,
        detector.predict,
    ):
        with pytest.raises(ValueError, match=match):
            method(small_data)


@pytest.mark.parametrize(
    "estimator",
    [
        tiny_autoencoder(image_shape=(1, 8, 8), conv_channels=(4,), max_iter=40),
        tiny_autoencoder(noise="gaussian", noise_level=0.5, max_iter=40),
        VariationalAutoencoder(
            4, hidden_layer_sizes=(32,), max_iter=40, random_state=0
        ),
    ],
    ids=["convolutional", "denoising", "variational"],
)
def test_outlier_detection_with_every_variant(digits, estimator):
    """Trained on zeros only, each variant tells other digits from zeros."""
    X_train, X_test, y_train, y_test = digits
    detector = AutoencoderOutlierDetector(estimator, contamination=0.05)
    detector.fit(X_train[y_train == 0])
    assert roc_auc_score(y_test == 0, detector.decision_function(X_test)) > 0.9
    assert np.mean(detector.predict(X_test[y_test != 0]) == -1) > 0.5


def test_grid_search_tunes_the_inner_autoencoder(digits):
    X_train, _, y_train, _ = digits
    X = np.vstack([X_train[y_train == 0], X_train[y_train != 0][:40]])
    y = np.r_[np.ones(np.sum(y_train == 0)), -np.ones(40)]
    search = GridSearchCV(
        AutoencoderOutlierDetector(tiny_autoencoder(max_iter=30)),
        {"estimator__n_components": [2, 8], "contamination": [0.1, 0.2]},
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.best_estimator_.estimator_.n_components in (2, 8)
    assert search.best_score_ > 0.8


@pytest.mark.parametrize("digit", [0, 4, 8])
def test_outlier_detector_beats_pca_and_isolation_forest_on_mnist(digit):
    """Trained on one digit, it ranks the other nine as outliers best (ROC AUC)."""
    X_train, y_train, X_test, y_test = load_npz_images("mnist", 10000, 2000)
    X_digit = X_train[y_train == digit]
    is_inlier = y_test == digit
    detector = AutoencoderOutlierDetector(
        AutoencoderTransformer(8, max_iter=30, random_state=0)
    ).fit(X_digit)
    pca = PCA(8, random_state=0).fit(X_digit)
    forest = IsolationForest(random_state=0).fit(X_digit)
    auc = {
        "ours": roc_auc_score(is_inlier, detector.score_samples(X_test)),
        "pca": roc_auc_score(
            is_inlier,
            -np.mean(
                (pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2, axis=1
            ),
        ),
        "forest": roc_auc_score(is_inlier, forest.score_samples(X_test)),
    }
    assert auc["ours"] > auc["pca"]
    assert auc["ours"] > auc["forest"]


# -- bad input: every method of each variant refuses and stays unchanged ----------


N_FEATURES = 5


def bad_input_models():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, N_FEATURES))
    options = {"n_components": 2, "hidden_layer_sizes": (4,), "max_iter": 3}
    return {
        "convolutional": AutoencoderTransformer(
            image_shape=(1, 1, -1), conv_channels=(2,), random_state=0, **options
        ).fit(X),
        "variational": VariationalAutoencoder(random_state=0, **options).fit(X),
        "outlier-detector": AutoencoderOutlierDetector(
            AutoencoderTransformer(random_state=0, **options)
        ).fit(X),
    }


@pytest.fixture(scope="module")
def variant_models():
    return bad_input_models()


# The detector's methods, standing in for the transformer's.
DETECTOR_METHODS = {
    "fit": "fit",
    "partial_fit": None,
    "transform": "predict",
    "inverse_transform": None,
    "score": "score_samples",
}


def with_nan(n_columns):
    X = np.random.RandomState(1).normal(size=(20, n_columns))
    X[3, 1] = np.nan
    return X


def one_column_too_many(n_columns):
    return np.random.RandomState(1).normal(size=(20, n_columns + 1))


# name: (input for a method, given its expected width; message; methods). The
# variants share the face's validation, which test_bad_input covers case by
# case: here every method meets one input it refuses.
VARIANT_REJECTED = {
    "nan": (with_nan, "contains NaN", tuple(DETECTOR_METHODS)),
    "one-column-too-many": (
        one_column_too_many,
        r"X has 6 features, but \w+ is expecting 5|"
        r"inverse_transform expects 2 columns \(n_components=2\), got 3",
        ("partial_fit", "transform", "inverse_transform", "score"),
    ),
}
CASES = [
    pytest.param(name, case, method, id=f"{name}-{case}-{method}")
    for name in ("convolutional", "variational", "outlier-detector")
    for case, (_, _, methods) in VARIANT_REJECTED.items()
    for method in methods
    if name != "outlier-detector" or DETECTOR_METHODS[method]
]


@pytest.mark.parametrize(("name", "case", "method"), CASES)
def test_rejected_input_leaves_variants_unchanged(variant_models, name, case, method):
    build, match, _ = VARIANT_REJECTED[case]
    model = copy.deepcopy(variant_models[name])
    if name == "outlier-detector":
        method = DETECTOR_METHODS[method]
    n_columns = 2 if method == "inverse_transform" else N_FEATURES
    before = snapshot(model)
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(build(n_columns))
    assert_unchanged(model, before)
