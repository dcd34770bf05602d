"""Data larger than memory: partial_fit over chunks, batched inference."""

import warnings
from typing import ClassVar

import numpy as np
import pytest
from sklearn.decomposition import PCA
from torch import nn

from skae import AutoencoderTransformer
from skae._data import INFERENCE_BATCH_SIZE
from tests import helpers
from tests.helpers import load_npz_images

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Epochs streamed in chunks must reach fit's test error within this factor.
# Measured on MNIST (6000 rows, 3 or 5 epochs, chunks of 500 to 2000 rows):
# 1.006 to 1.031 times fit's error; on the synthetic surface below, 0.76 to 0.77
# (smaller steps per chunk helped there). The margin covers other seeds.
STREAMING_TOLERANCE = 1.10


def to_memmap(X, path):
    """Write X to a float32 file and open it read-only, as a data set on disk."""
    disk = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    disk[:] = X
    disk.flush()
    del disk
    return np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)


def stream(estimator, X, chunk_size, n_epochs):
    """Train for ``n_epochs`` passes over X, one partial_fit per chunk."""
    for _ in range(n_epochs):
        for start in range(0, X.shape[0], chunk_size):
            estimator.partial_fit(X[start : start + chunk_size])
    return estimator


def low_rank_data(n_samples, seed):
    """Samples near one curved 3-d surface in 20-d space, plus noise."""
    rng = np.random.RandomState(seed)
    latent = rng.uniform(-1, 1, size=(n_samples, 3))
    features = np.hstack([latent, np.sin(2 * latent), latent[:, :1] * latent[:, 1:]])
    mixing = np.random.RandomState(42).normal(size=(features.shape[1], 20))
    noise = 0.05 * rng.normal(size=(n_samples, 20))
    return (features @ mixing + noise).astype(np.float32)


def test_streamed_epochs_match_fit_on_mnist_memmap(tmp_path):
    X_train, _, X_test, _ = load_npz_images("mnist", 4000, 1000)
    X_disk = to_memmap(X_train, tmp_path / "mnist.f32")
    params = {
        "n_components": 16,
        "hidden_layer_sizes": (64,),
        "max_iter": 3,
        "random_state": 0,
    }
    whole = AutoencoderTransformer(**params).fit(X_train)
    streamed = stream(AutoencoderTransformer(**params), X_disk, 1000, n_epochs=3)
    assert streamed.n_iter_ == 3 * 4
    assert -streamed.score(X_test) <= STREAMING_TOLERANCE * -whole.score(X_test)


@pytest.mark.parametrize("chunk_size", [250, 1000])
def test_streamed_epochs_match_fit_on_synthetic_chunks(tmp_path, chunk_size):
    X = low_rank_data(3000, seed=0)
    X_test = low_rank_data(500, seed=1)
    params = {
        "n_components": 3,
        "hidden_layer_sizes": (32,),
        "max_iter": 10,
        "learning_rate_init": 1e-2,
        "random_state": 0,
    }
    whole = AutoencoderTransformer(**params).fit(X)
    streamed = stream(
        AutoencoderTransformer(**params),
        to_memmap(X, tmp_path / "x.f32"),
        chunk_size,
        n_epochs=10,
    )
    pca = PCA(n_components=3).fit(X)
    error_pca = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    error_whole, error_streamed = -whole.score(X_test), -streamed.score(X_test)
    # fit learned the curved surface, which 3 principal components cannot ...
    assert error_whole < 0.5 * error_pca
    # ... and streaming the same epochs in chunks got as far.
    assert error_streamed <= STREAMING_TOLERANCE * error_whole


def test_standardisation_comes_from_the_first_chunk():
    X = low_rank_data(600, seed=0)
    ae = AutoencoderTransformer(n_components=3, hidden_layer_sizes=(8,))
    ae.set_params(random_state=0).partial_fit(X[:200])
    mean, scale = ae.mean_.copy(), ae.scale_
    ae.partial_fit(X[200:] + 10.0)
    np.testing.assert_allclose(mean, X[:200].mean(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(ae.mean_, mean)
    assert ae.scale_ == scale


@pytest.fixture(scope="module")
def fitted_wide():
    X = low_rank_data(300, seed=0)
    return AutoencoderTransformer(
        n_components=3,
        hidden_layer_sizes=(16,),
        max_iter=5,
        early_stopping=False,
        random_state=0,
    ).fit(X)


class RowsSeen(nn.Linear):
    """A linear layer that records the rows of each batch it runs on, by end.

    One list for the class, as skae runs copies of the fitted modules; calls
    on two rows are skae counting the network's work, not batches.
    """

    seen: ClassVar[list[tuple[str, int]]] = []

    def __init__(self, end, *args):
        super().__init__(*args)
        self.end = end

    def forward(self, x):
        if x.shape[0] > 2:
            RowsSeen.seen.append((self.end, x.shape[0]))
        return super().forward(x)


def rows_seen_network(n_features, n_outputs):
    return (
        nn.Sequential(RowsSeen("encoder", n_features, 16), nn.Linear(16, n_outputs)),
        nn.Sequential(RowsSeen("decoder", n_outputs, 16), nn.Linear(16, n_features)),
    )


@pytest.mark.parametrize(
    ("method", "ends"),
    [
        ("transform", ["encoder"]),
        ("score_samples", ["encoder", "decoder"]),
        ("inverse_transform", ["decoder"]),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_runs_in_bounded_batches(method, ends, dtype):
    n_samples = 2 * INFERENCE_BATCH_SIZE + 123
    ae = AutoencoderTransformer(
        n_components=3, network=rows_seen_network, max_iter=2, random_state=0
    ).fit(low_rank_data(300, seed=0))
    X = low_rank_data(n_samples, seed=2).astype(dtype)
    if method == "inverse_transform":
        X = ae.transform(X)
    RowsSeen.seen.clear()
    out = getattr(ae, method)(X)
    assert out.shape[0] == n_samples
    for end in ends:
        rows = [n_rows for seen_end, n_rows in RowsSeen.seen if seen_end == end]
        assert max(rows) <= INFERENCE_BATCH_SIZE
        assert sum(rows) == n_samples


@pytest.mark.parametrize("method", ["transform", "score_samples", "inverse_transform"])
@pytest.mark.parametrize(("value", "message"), [(np.nan, "NaN"), (-np.inf, "infinity")])
def test_non_finite_value_in_a_late_batch_is_refused(
    fitted_wide, method, value, message
):
    """NaN and infinity are checked batch by batch: the last batch counts too."""
    X = low_rank_data(2 * INFERENCE_BATCH_SIZE + 5, seed=4)
    if method == "inverse_transform":
        X = fitted_wide.transform(X)
    X[-1, -1] = value
    with pytest.raises(ValueError, match=f"Input X contains {message}"):
        getattr(fitted_wide, method)(X)


def test_finite_rows_whose_sum_overflows_reach_the_overflow_check(fitted_wide):
    """Finite rows that overflow only as a sum are not called NaN or infinity."""
    X = low_rank_data(INFERENCE_BATCH_SIZE + 5, seed=5).astype(np.float32)
    X[:2] = np.float32(3e38)
    with pytest.raises(ValueError, match="The network overflowed in float32"):
        fitted_wide.score_samples(X)  # squared errors past float32's range


def test_inference_on_read_only_memmap_matches_memory(fitted_wide, tmp_path):
    X = low_rank_data(1000, seed=3)
    X_disk = to_memmap(X, tmp_path / "x.f32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes = fitted_wide.transform(X_disk)
        scores = fitted_wide.score_samples(X_disk)
    np.testing.assert_array_equal(codes, fitted_wide.transform(X))
    np.testing.assert_array_equal(scores, fitted_wide.score_samples(X))
    assert codes.dtype == np.float32
    assert not np.shares_memory(codes, X_disk)


def unaligned_copy(X):
    """X two bytes off its dtype's alignment, as deserialised blocks can be."""
    buffer = bytearray(X.nbytes + 2)
    copy = np.frombuffer(buffer, dtype=X.dtype, count=X.size, offset=2)
    copy = copy.reshape(X.shape)
    copy[...] = X
    return copy


@pytest.mark.parametrize("layout", ["unaligned", "fortran"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_memory_layout_does_not_change_a_fit(layout, method):
    """The same values give the same model, bit for bit, whatever their layout."""
    # Few features: PCA's start goes through the covariance, whose BLAS product
    # rounds differently on unaligned memory.
    X = helpers.low_rank_data(100, 10, rank=3, noise=0.05).astype(np.float32)
    moved = unaligned_copy(X) if layout == "unaligned" else np.asfortranarray(X)
    assert moved.flags.aligned == (layout != "unaligned")
    assert moved.flags.c_contiguous == (layout != "fortran")

    def trained(data):
        ae = AutoencoderTransformer(3, hidden_layer_sizes=(16,), random_state=0)
        getattr(ae.set_params(max_iter=5), method)(data)
        return ae

    expected, got = trained(X), trained(moved)
    np.testing.assert_array_equal(got.transform(X), expected.transform(X))
    assert got.loss_curve_ == expected.loss_curve_
