"""Helpers shared by skae's test modules; fixtures live in conftest.py.

Test modules import from here, never from one another.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from torch import nn

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_npz_images(name, n_train, n_test):
    """First rows of a shared MNIST-style archive as flat [0, 1] floats, or skip."""
    path = SHARED_DATA / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path.name} not present beside the repository")
    with np.load(path) as data:
        X_train = data["x_train"][:n_train].reshape(n_train, -1) / np.float32(255)
        X_test = data["x_test"][:n_test].reshape(n_test, -1) / np.float32(255)
        return X_train, data["y_train"][:n_train], X_test, data["y_test"][:n_test]


def low_rank_data(n_samples, n_features, rank, noise, seed=0):
    """Samples near a random ``rank``-dimensional subspace, plus Gaussian noise."""
    rng = np.random.RandomState(seed)
    latent = rng.normal(size=(n_samples, rank))
    return latent @ rng.normal(size=(rank, n_features)) + noise * rng.normal(
        size=(n_samples, n_features)
    )


def assert_same(new, old, where="value"):
    """Recursively check two values are equal, bit for bit and of the same type."""
    assert type(new) is type(old), where
    if isinstance(old, np.ndarray):
        assert new.dtype == old.dtype, where
        assert new.shape == old.shape, where
        assert np.array_equal(new, old, equal_nan=old.dtype.kind in "fc"), where
    elif isinstance(old, torch.Tensor):
        assert new.dtype == old.dtype, where
        assert new.device == old.device, where
        assert torch.equal(new, old) or (
            torch.equal(new.isnan(), old.isnan())
            and torch.equal(new.nan_to_num(), old.nan_to_num())
        ), where
    elif isinstance(old, nn.Module):
        assert new.training == old.training, where
        assert str(new) == str(old), where
        assert_same(new.state_dict(), old.state_dict(), where)
    elif isinstance(old, dict):
        assert list(new) == list(old), where
        for key in old:
            assert_same(new[key], old[key], f"{where}[{key!r}]")
    elif isinstance(old, list | tuple):
        assert len(new) == len(old), where
        for index, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    elif isinstance(old, np.random.RandomState):
        assert_same(new.get_state(), old.get_state(), where)
    elif isinstance(old, BaseEstimator):
        assert sorted(vars(new)) == sorted(vars(old)), where
        for name, value in vars(old).items():
            assert_same(getattr(new, name), value, f"{where}.{name}")
    elif isinstance(old, float) and np.isnan(old):
        assert np.isnan(new), where
    elif type(old).__eq__ is object.__eq__ and new is not old:
        # Compared by identity, which a deep copy changes: compare attributes.
        assert_same(getattr(new, "__dict__", {}), getattr(old, "__dict__", {}), where)
    else:
        assert new == old, where


def snapshot(model):
    """The attributes' identities, and deep copies of their values."""
    return dict(vars(model)), copy.deepcopy(vars(model))


def assert_unchanged(model, before):
    """Check every attribute is the same object, holding the same value, as before."""
    identities, values = before
    assert vars(model).keys() == identities.keys()
    for name, value in identities.items():
        assert vars(model)[name] is value, f"{name} was replaced"
    assert_same(dict(vars(model)), values, "model")


def starts_at_pca(model, X):
    """Whether ``model``'s network starts at PCA's solution on ``X``.

    Trained one epoch at a negligible learning rate, a network that starts at
    PCA reconstructs X as PCA does; one from random weights does not.
    """
    barely_trained = clone(model).set_params(
        max_iter=1, learning_rate_init=1e-9, early_stopping=False
    )
    barely_trained.fit(X)
    pca = PCA(barely_trained.n_components_).fit(X)
    pca_error = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
    return bool(np.isclose(-barely_trained.score(X), pca_error, rtol=1e-3))


def decodes_into_unit_interval(model):
    """Whether any code, however far out, decodes into [0, 1], as a sigmoid does."""
    codes = 1e3 * np.random.RandomState(0).normal(size=(50, model.n_components_))
    reconstructions = model.inverse_transform(codes)
    return bool(np.all((reconstructions >= 0) & (reconstructions <= 1)))
