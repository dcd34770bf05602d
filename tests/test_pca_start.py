"""The PCA start: a network that begins as PCA and can only improve on it."""

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

from skae import AutoencoderTransformer, VariationalAutoencoder
from skae._networks import AutoencoderNet, LinearWithResidual
from skae._training import TrainingConfig, train
from tests.helpers import fit_quietly


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
    ae = fit_quietly(
        AutoencoderTransformer(
            n_components=5,
            image_shape=image_shape,
            conv_channels=(4,),
            learning_rate_init=1e-12,
            max_iter=1,
            early_stopping=False,
            random_state=0,
        ),
        X_train,
    )
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
    ae = fit_quietly(AutoencoderTransformer(n_components=32, random_state=0), X_train)
    # Measured 0.66 (benchmarks/bench_vs_pca.py); random weights gave 1.8.
    assert mse(ae, X_test) <= 0.8 * pca_error


@pytest.mark.parametrize("k", [5, 20])
def test_breast_cancer_never_worse_than_pca_with_defaults(breast_cancer_split, k):
    X_train, X_test = breast_cancer_split
    pca_error = mse(PCA(n_components=k).fit(X_train), X_test)
    ae = fit_quietly(AutoencoderTransformer(n_components=k, random_state=0), X_train)
    # Random weights gave 1.13 and 6.6; float32 rounds the PCA start's error.
    assert mse(ae, X_test) <= pca_error * (1 + 1e-6)


def test_linear_data_ends_no_worse_than_pca():
    """Where PCA is optimal, the best validation epoch may be the start itself."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 3)) @ rng.normal(size=(3, 20))
    X += 0.3 * rng.normal(size=X.shape)
    X_train, X_test = X[:900], X[900:]
    pca_error = mse(PCA(n_components=3).fit(X_train), X_test)
    ae = fit_quietly(AutoencoderTransformer(n_components=3, random_state=0), X_train)
    assert mse(ae, X_test) <= 1.01 * pca_error
    assert ae.best_validation_score_ >= max(ae.validation_scores_)


@pytest.mark.parametrize("start_is_candidate", [True, False])
def test_the_start_competes_with_every_epoch(start_is_candidate):
    """Training that only makes things worse ends where it started, if allowed."""
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(200, 6)), dtype=torch.float32)
    network = AutoencoderNet(nn.Linear(6, 2), nn.Linear(2, 6))
    start = copy.deepcopy(network.state_dict())
    train(
        network,
        X[:150],
        X[150:],
        # Gradient ascent on the error: every epoch is worse than the start.
        batch_loss=lambda rows: -torch.mean((network(rows) - rows) ** 2),
        config=TrainingConfig(max_iter=5, learning_rate_init=1e-2),
        generator=torch.Generator().manual_seed(0),
        start_is_candidate=start_is_candidate,
    )
    same = all(
        torch.equal(value, network.state_dict()[name]) for name, value in start.items()
    )
    assert same == start_is_candidate


def test_random_init_keeps_the_plain_network(digits_split):
    X_train, _ = digits_split
    ae = AutoencoderTransformer(
        n_components=4, init="random", max_iter=2, random_state=0
    )
    fit_quietly(ae, X_train)
    assert not isinstance(ae._network.encoder, LinearWithResidual)
    pca_start = fit_quietly(clone(ae).set_params(init="pca"), X_train)
    assert isinstance(pca_start._network.encoder, LinearWithResidual)


def test_custom_networks_and_vae_keep_their_own_start(digits_split):
    X_train, _ = digits_split

    def network(n_features, n_outputs):
        return nn.Linear(n_features, n_outputs), nn.Linear(n_outputs, n_features)

    for model in (
        AutoencoderTransformer(n_components=3, network=network, max_iter=2),
        VariationalAutoencoder(n_components=3, max_iter=2),
    ):
        fit_quietly(model.set_params(random_state=0), X_train)
        assert not isinstance(model._network.encoder, LinearWithResidual)


def test_partial_fit_starts_from_the_first_batch_pca(digits_split):
    X_train, _ = digits_split
    batch = X_train[:400]
    ae = AutoencoderTransformer(
        n_components=8, learning_rate_init=1e-12, random_state=0
    ).partial_fit(batch)
    pca = PCA(n_components=8).fit(batch)
    pca_error = np.mean((pca.inverse_transform(pca.transform(batch)) - batch) ** 2)
    assert ae.loss_curve_[0] == pytest.approx(pca_error, rel=1e-3)


def test_auto_early_stopping_holds_out_rows_only_where_enough(digits_split):
    X_train, _ = digits_split
    ae = fit_quietly(
        AutoencoderTransformer(n_components=2, max_iter=3, random_state=0), X_train
    )
    assert len(ae.validation_scores_) == 3
    assert ae.best_loss_ is None
    tiny = fit_quietly(
        AutoencoderTransformer(n_components=2, max_iter=3, random_state=0),
        X_train[:40],
    )
    assert tiny.validation_scores_ is None
    assert tiny.best_loss_ == min(tiny.loss_curve_)


def test_fraction_picks_the_smallest_sufficient_code(digits_split):
    """n_components=0.8: a code at most PCA's size, reaching R² 0.8 held out."""
    X_train, X_test = digits_split
    ae = fit_quietly(AutoencoderTransformer(n_components=0.8, random_state=0), X_train)
    pca = PCA(n_components=0.8).fit(X_train)
    # Measured: 6 components against PCA's 13.
    assert 1 <= ae.n_components_ < pca.n_components_
    assert ae.transform(X_test).shape == (len(X_test), ae.n_components_)
    assert len(ae.get_feature_names_out()) == ae.n_components_
    # The network kept is the one a plain fit of that size gives.
    same = fit_quietly(
        AutoencoderTransformer(n_components=ae.n_components_, random_state=0),
        X_train,
    )
    np.testing.assert_array_equal(same.transform(X_test), ae.transform(X_test))
    total = np.mean((X_test - X_train.mean(axis=0)) ** 2)
    assert 1 - mse(ae, X_test) / total >= 0.75


def test_fraction_search_is_a_bisection(monkeypatch):
    """One network per size tried; the smallest size reaching the fraction wins."""
    import skae._pca as face

    tried = []
    reach = 5

    def fit_network(n_components):
        tried.append(n_components)
        return n_components, None

    monkeypatch.setattr(
        face,
        "reconstruction_error",
        lambda k, X: torch.tensor(0.0 if k >= reach else 1.0),
    )
    X_check = torch.ones(4, 3)
    n_components, network, _ = face.smallest_sufficient_code(
        fit_network, 16, 0.9, X_check
    )
    assert n_components == network == reach
    assert len(tried) <= 5
    assert sorted(set(tried)) == sorted(tried)
