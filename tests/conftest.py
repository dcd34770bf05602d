import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from tests.helpers import low_rank_data


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], split 70/30: X_train, X_test, y_train, y_test."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0)


@pytest.fixture(scope="session")
def small_data():
    return low_rank_data(120, 10, rank=3, noise=0.05)


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


@pytest.fixture(scope="session")
def one_torch_thread():
    """Train tiny networks on one torch thread.

    Waking torch's threads costs more than the work itself, and on a busy
    machine a second intra-op thread costs far more than it gives (a 120 x 10
    fit measured 0.3 s on one thread, 6.5 s on two, under a load average of 12
    on 2 cores); what these tests check does not depend on it. Fits in this
    process also compute as Dask's workers do, whose nanny sets
    OMP_NUM_THREADS=1. Modules ask for it with ``pytestmark``; session-scoped,
    it stays until the session ends, and tests that need more threads ask for
    ``torch_threads``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
