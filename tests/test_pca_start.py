"""The PCA start: a network that begins as PCA and can only improve on it."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from skae import AutoencoderTransformer, VariationalAutoencoder, load, save
from skae._fitting import Fold, fit_network, trained_beats_start
from skae._networks import AutoencoderNet
from skae._pca import smallest_sufficient_code
from skae._training import TrainingConfig
from tests.helpers import low_rank_data, starts_at_pca


def mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


@pytest.fixture(scope="module")
def digits_split():
    X = load_digits().data / 16.0
    return train_test_split(X, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def breast_cancer_split():
    X_train, X_test = train_test_split(
        load_breast_cancer().data, test_size=0.25, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)


@pytest.mark.parametrize("image_shape", [None, (1, 8, 8)])
def test_untrained_start_is_pca(digits_split, image_shape):
    """A step too small to move the weights leaves PCA's codes and reconstructions."""
    X_train, X_test = digits_split
    pca = PCA(n_components=5).fit(X_train)
    ae = AutoencoderTransformer(
        n_components=5,
        image_shape=image_shape,
        conv_channels=(4,),
        learning_rate_init=1e-12,
        max_iter=1,
        early_stopping=False,
        random_state=0,
    ).fit(X_train)
    np.testing.assert_allclose(
        ae.transform(X_test) * ae.scale_, pca.transform(X_test), atol=1e-4
    )
    np.testing.assert_allclose(
        ae.inverse_transform(ae.transform(X_test)),
        pca.inverse_transform(pca.transform(X_test)),
        atol=1e-4,
    )


def test_digits_k32_beats_pca_with_defaults(digits_split):
    X_train, X_test = digits_split
    pca_error = mse(PCA(n_components=32).fit(X_train), X_test)
    ae = AutoencoderTransformer(n_components=32, random_state=0).fit(X_train)
    # Measured 0.66 (benchmarks/bench_vs_pca.py); random weights gave 1.8.
    assert mse(ae, X_test) <= 0.8 * pca_error


@pytest.mark.parametrize("k", [5, 20])
def test_breast_cancer_never_worse_than_pca_with_defaults(breast_cancer_split, k):
    X_train, X_test = breast_cancer_split
    pca_error = mse(PCA(n_components=k).fit(X_train), X_test)
    ae = AutoencoderTransformer(n_components=k, random_state=0).fit(X_train)
    # Random weights gave 1.13 and 6.6; float32 rounds the PCA start's error.
    assert mse(ae, X_test) <= pca_error * (1 + 1e-6)


def test_linear_data_ends_no_worse_than_pca():
    """Where PCA is optimal, the best validation epoch may be the start itself."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 3)) @ rng.normal(size=(3, 20))
    X += 0.3 * rng.normal(size=X.shape)
    X_train, X_test = X[:900], X[900:]
    pca_error = mse(PCA(n_components=3).fit(X_train), X_test)
    ae = AutoencoderTransformer(n_components=3, random_state=0).fit(X_train)
    assert mse(ae, X_test) <= 1.01 * pca_error
    assert ae.best_validation_score_ >= max(ae.validation_scores_)


@pytest.mark.parametrize("start_competes", [True, False])
def test_the_start_competes_with_the_trained_network(start_competes):
    """Training that only makes things worse ends where it started, if allowed."""
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(200, 6)), dtype=torch.float32)

    def build(rows):
        return AutoencoderNet(nn.Linear(6, 2), nn.Linear(2, 6))

    torch.manual_seed(0)
    start = build(None).state_dict()
    order = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    fitted = fit_network(
        build,
        X,
        [Fold(order[50:], order[:50])],
        # Gradient ascent on the error: every epoch is worse than the start.
        batch_loss=lambda network, rows: -torch.mean((network(rows) - rows) ** 2),
        config=TrainingConfig(max_iter=5, learning_rate_init=1e-2),
        refit_config=TrainingConfig(max_iter=5, learning_rate_init=1e-2),
        seed=0,
        start_competes=start_competes,
    )
    same = all(
        torch.equal(value, fitted.network.state_dict()[name])
        for name, value in start.items()
    )
    assert same == start_competes == fitted.kept_start


def test_an_advantage_within_the_noise_keeps_the_start():
    """The trained network must beat the start by more than the noise of rows."""
    rng = np.random.default_rng(0)
    start = torch.as_tensor(rng.exponential(size=40))
    noisy = start + torch.as_tensor(rng.normal(scale=0.5, size=40))
    # On average a little better, but by far less than three standard errors.
    trained = noisy - noisy.mean() + start.mean() - 0.01
    assert float(trained.mean()) < float(start.mean())
    assert not trained_beats_start(start, trained)
    assert trained_beats_start(start, start - 0.05)
    assert not trained_beats_start(start, start)
    # Nine rows say too little, however clear their advantage.
    assert trained_beats_start(start[:10], start[:10] - 0.05)
    assert not trained_beats_start(start[:9], start[:9] - 0.05)


def test_a_large_advantage_on_a_few_rows_needs_two_standard_errors():
    """Removing most of a few rows' large errors wins at under 3 SE."""
    start = torch.full((100,), 0.01, dtype=torch.float64)
    start[:8] = 1.0  # eight rows the start reconstructs badly
    trained = start.clone()
    trained[:8] = torch.tensor([0.02, 0.02, 0.1, 0.2, 0.3, 0.9, 0.95, 1.0])
    falls = start - trained
    assert 2 < falls.mean() / (falls.std() / 10) < 3
    assert falls.mean() > 0.5 * start.mean()
    assert trained_beats_start(start, trained)
    # The same falls on larger errors, under half of them: within the noise.
    assert not trained_beats_start(start + 0.3, trained + 0.3)


def test_small_table_where_training_overfits_keeps_pca():
    """20 standardised rows: training fits the noise, the kept model is PCA."""
    X = StandardScaler().fit_transform(load_breast_cancer().data[:20])
    ae = AutoencoderTransformer(n_components=3, random_state=0).fit(X)
    pca = PCA(n_components=3).fit(X)
    np.testing.assert_allclose(
        ae.inverse_transform(ae.transform(X)),
        pca.inverse_transform(pca.transform(X)),
        atol=1e-4,
    )
    # Judged by cross-validation: every row was held out once.
    assert ae.validation_scores_ is not None


@pytest.mark.parametrize("n_samples", [3, 4, 9])
def test_a_table_of_fewer_than_ten_rows_is_judged_too(n_samples):
    """Every row judges once, down to three: nine rows do not train unchecked.

    Trained unjudged, such tables reconstructed new rows worse than PCA
    (``bench_vs_pca.py --tiny``); judged on too few held-out rows, they keep PCA.
    """
    X = StandardScaler().fit_transform(load_breast_cancer().data[:n_samples])
    ae = AutoencoderTransformer(n_components=1, random_state=0).fit(X)
    assert len(ae.validation_scores_) == ae.n_iter_ > 0
    X_new = StandardScaler().fit_transform(load_breast_cancer().data[100:200])
    pca = PCA(n_components=1).fit(X)
    np.testing.assert_allclose(
        ae.inverse_transform(ae.transform(X_new)),
        pca.inverse_transform(pca.transform(X_new)),
        atol=1e-4,
    )


@pytest.mark.parametrize(("n_samples", "batch_norm"), [(1, False), (2, True)])
def test_one_or_two_rows_train_without_rows_to_judge(n_samples, batch_norm):
    # Folds of two rows would train on one each, too few for batch_norm.
    ae = AutoencoderTransformer(
        n_components=1, batch_norm=batch_norm, max_iter=3, random_state=0
    )
    ae.fit(load_breast_cancer().data[:n_samples])
    assert ae.validation_scores_ is None and ae.n_iter_ == 3


def test_training_that_truly_wins_still_wins(tmp_path):
    """A non-linear structure on 60 rows: training beats PCA on new rows."""
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, size=300)
    X = np.column_stack([np.cos(angle), np.sin(angle), np.cos(2 * angle)])
    X += 0.02 * rng.normal(size=X.shape)
    X_train, X_test = X[:60], X[60:]
    ae = AutoencoderTransformer(n_components=1, random_state=0).fit(X_train)
    pca_error = mse(PCA(n_components=1).fit(X_train), X_test)
    assert mse(ae, X_test) < 0.7 * pca_error
    # Cross-validated: the refit trains the best epoch's length, fewer epochs
    # than were judged;
    # the model file holds both records and loads.
    assert ae.n_iter_ < len(ae.validation_scores_)
    assert len(ae.loss_curve_) == ae.n_iter_
    path = tmp_path / "model.safetensors"
    save(ae, path)
    np.testing.assert_array_equal(load(path).transform(X_test), ae.transform(X_test))


def test_the_kept_model_has_learnt_from_every_row():
    """Held-out rows judge, then teach: a row unlike any other is learnt too.

    Half the rows are held out; one row points where no other does. A model
    kept without training on all rows has never seen that row when it was
    held out, and reconstructs it as the mean. (A random start, so that the
    PCA start, refitted on all rows when it wins, does not learn it alone.)
    """
    X = low_rank_data(40, 6, rank=2, noise=0.1)
    settings = {
        "n_components": 2,
        "init": "random",
        "hidden_layer_sizes": (16,),
        "max_iter": 60,
        "learning_rate": "constant",
        "learning_rate_init": 0.03,
        "n_iter_no_change": 60,
        "early_stopping": True,
        "validation_fraction": 0.5,
        "random_state": 0,
    }
    for row in range(8):  # about half of them held out
        X_odd = X.copy()
        X_odd[row] = 0.0
        X_odd[row, 5] = 30.0
        ae = AutoencoderTransformer(**settings).fit(X_odd)
        reconstruction = ae.inverse_transform(ae.transform(X_odd[row : row + 1]))
        error = np.sum((reconstruction - X_odd[row]) ** 2)
        spread = np.sum((X_odd[row] - X_odd.mean(axis=0)) ** 2)
        assert error < 0.25 * spread, row


def test_random_init_keeps_the_plain_network(digits_split):
    X_train, _ = digits_split
    ae = AutoencoderTransformer(
        n_components=4, init="random", max_iter=2, random_state=0
    )
    assert not starts_at_pca(ae, X_train)
    assert starts_at_pca(clone(ae).set_params(init="pca"), X_train)


def test_custom_networks_and_vae_keep_their_own_start(digits_split):
    X_train, _ = digits_split

    def network(n_features, n_outputs):
        return nn.Linear(n_features, n_outputs), nn.Linear(n_outputs, n_features)

    for model in (
        AutoencoderTransformer(n_components=3, network=network, max_iter=2),
        VariationalAutoencoder(n_components=3, max_iter=2),
    ):
        assert not starts_at_pca(model.set_params(random_state=0), X_train)


def test_partial_fit_starts_from_the_first_batch_pca(digits_split):
    X_train, _ = digits_split
    batch = X_train[:400]
    ae = AutoencoderTransformer(
        n_components=8, learning_rate_init=1e-12, random_state=0
    ).partial_fit(batch)
    pca = PCA(n_components=8).fit(batch)
    pca_error = np.mean((pca.inverse_transform(pca.transform(batch)) - batch) ** 2)
    assert ae.loss_curve_[0] == pytest.approx(pca_error, rel=1e-3)


def test_auto_early_stopping_judges_by_holdout_or_cross_validation(digits_split):
    X_train, _ = digits_split
    ae = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(X_train)
    assert len(ae.validation_scores_) == 3
    assert ae.best_loss_ is None
    small = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(
        X_train[:40]
    )
    # Too few rows for a holdout: five folds judge, every row held out once.
    assert len(small.validation_scores_) == 3
    # Four rows are judged too.
    tiny = AutoencoderTransformer(n_components=2, max_iter=3, random_state=0).fit(
        X_train[:4]
    )
    assert len(tiny.validation_scores_) == 3
    single = AutoencoderTransformer(n_components=1, max_iter=3, random_state=0)
    single.fit(X_train[:1])
    assert single.validation_scores_ is None
    assert single.best_loss_ == min(single.loss_curve_)


def test_fraction_picks_the_smallest_sufficient_code(digits_split):
    """n_components=0.8: a code at most PCA's size, reaching R² 0.8 held out."""
    X_train, X_test = digits_split
    ae = AutoencoderTransformer(n_components=0.8, random_state=0).fit(X_train)
    pca = PCA(n_components=0.8).fit(X_train)
    # Measured: 6 components against PCA's 13.
    assert 1 <= ae.n_components_ < pca.n_components_
    assert ae.transform(X_test).shape == (len(X_test), ae.n_components_)
    assert len(ae.get_feature_names_out()) == ae.n_components_
    # The network kept is the one a plain fit of that size gives.
    same = AutoencoderTransformer(n_components=ae.n_components_, random_state=0).fit(
        X_train
    )
    np.testing.assert_array_equal(same.transform(X_test), ae.transform(X_test))
    total = np.mean((X_test - X_train.mean(axis=0)) ** 2)
    assert 1 - mse(ae, X_test) / total >= 0.75


def test_fraction_search_is_a_bisection():
    """One model per size tried; the smallest size reaching the fraction wins."""
    tried = []
    reach = 5

    def fit_and_score(n_components):
        tried.append(n_components)
        return (1.0 if n_components >= reach else 0.0), n_components

    n_components, model = smallest_sufficient_code(fit_and_score, 16, 0.9)
    assert n_components == model == reach
    assert len(tried) <= 5
    assert sorted(set(tried)) == sorted(tried)
