from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

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


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], split 70/30: X_train, X_test, y_train, y_test."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0)


@pytest.fixture(scope="session")
def small_data():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(120, 3))
    return latent @ rng.normal(size=(3, 10)) + 0.05 * rng.normal(size=(120, 10))


@pytest.fixture(scope="session")
def fitted_small(small_data):
    """A small fitted model shared by read-only tests (never mutate it)."""
    return AutoencoderTransformer(
        n_components=3,
        hidden_layer_sizes=(16,),
        max_iter=200,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(small_data)


@pytest.fixture
def torch_threads():
    """Give torch 4 threads for the test, so that a share or choice is visible."""
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield 4
    torch.set_num_threads(before)
