"""SciPy sparse input: the same results as dense input, in memory of its non-zeros."""

import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from skae._pca import principal_axes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FORMATS = [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.coo_array]


def random_csr(n_samples, n_features, per_row, seed=0, dtype=np.float64):
    """Bag-of-words-like counts: ``per_row`` random columns per row, at most."""
    rng = np.random.RandomState(seed)
    columns = np.sort(rng.randint(0, n_features, size=(n_samples, per_row)), axis=1)
    X = sp.csr_array(
        (
            rng.poisson(3.0, size=columns.size).astype(dtype) + 1,
            columns.ravel(),
            np.arange(0, columns.size + 1, per_row),
        ),
        shape=(n_samples, n_features),
    )
    X.sum_duplicates()
    return X


@pytest.fixture(scope="module")
def tall():
    """Tall, narrow data: PCA's covariance solver, 5-fold cross-validation."""
    return random_csr(90, 8, 3)


@pytest.fixture(scope="module")
def wide():
    """Wider than 500 columns: PCA's randomized solver, a holdout of 60 rows."""
    return random_csr(600, 700, 12, seed=1)


def assert_same_model(sparse_model, dense_model, X):
    """Every output of a model fitted on sparse X is the dense model's, to the bit."""
    D = X.toarray()
    codes = sparse_model.transform(X)
    assert_array_equal(codes, dense_model.transform(D))
    assert_array_equal(
        sparse_model.inverse_transform(codes), dense_model.inverse_transform(codes)
    )
    assert_array_equal(sparse_model.score_samples(X), dense_model.score_samples(D))
    assert_array_equal(sparse_model.mean_, dense_model.mean_)
    # The scale's variance is summed in another order: float64 rounding apart,
    # and so are the losses reported in squared units of the data.
    assert sparse_model.scale_ == pytest.approx(dense_model.scale_, rel=1e-14)
    assert sparse_model.loss_curve_ == pytest.approx(dense_model.loss_curve_, rel=1e-13)


@pytest.mark.parametrize("container", FORMATS, ids=lambda c: c.__name__)
def test_sparse_fit_equals_dense_fit(tall, container):
    """Each SciPy format fits the model dense X fits, bit for bit."""
    params = dict(n_components=2, hidden_layer_sizes=(6,), max_iter=4, random_state=0)
    sparse_model = AutoencoderTransformer(**params).fit(container(tall))
    dense_model = AutoencoderTransformer(**params).fit(tall.toarray())
    assert_same_model(sparse_model, dense_model, tall)
    assert_array_equal(
        sparse_model.transform(container(tall)), dense_model.transform(tall.toarray())
    )


@pytest.mark.parametrize(
    "params",
    [
        dict(n_components=4, early_stopping=True, validation_fraction=0.1),
        dict(n_components=4, init="random", early_stopping=False),
        dict(n_components=3, noise="mask", noise_level=0.2, batch_size=64),
    ],
    ids=["pca-start-holdout", "random-start", "denoising"],
)
def test_wide_sparse_fit_equals_dense_fit(wide, params):
    """Wide sparse X: held-out rows stay sparse, PCA's randomized start matches."""
    params = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, **params)
    sparse_model = AutoencoderTransformer(**params).fit(wide)
    dense_model = AutoencoderTransformer(**params).fit(wide.toarray())
    assert_same_model(sparse_model, dense_model, wide)


def test_sparse_pca_start_equals_dense(wide):
    """The start's axes on sparse X are PCA's on dense X, in float32.

    Up to rounding noise where columns hold no variance at all.
    """
    for X in (wide, wide[:40], wide[:, :30], wide[:100, :400]):
        assert_allclose(
            principal_axes(X, 5, 0),
            principal_axes(X.toarray(), 5, 0),
            rtol=1e-6,
            atol=1e-12,
        )


def test_sparse_fraction_of_variance_equals_dense(tall):
    params = dict(n_components=0.8, hidden_layer_sizes=(6,), max_iter=3)
    sparse_model = AutoencoderTransformer(**params, random_state=0).fit(tall)
    dense_model = AutoencoderTransformer(**params, random_state=0).fit(tall.toarray())
    assert sparse_model.n_components_ == dense_model.n_components_
    assert_same_model(sparse_model, dense_model, tall)


def test_sparse_fraction_of_variance_refuses_very_wide_data():
    X = random_csr(20, 5000, 3)
    with pytest.raises(ValueError, match=r"at most 4096 features.*int n_components"):
        AutoencoderTransformer(n_components=0.5).fit(X)


def test_sparse_partial_fit_equals_dense(tall):
    sparse_model = AutoencoderTransformer(n_components=2, random_state=0)
    dense_model = AutoencoderTransformer(n_components=2, random_state=0)
    for rows in (slice(0, 45), slice(45, 90)):
        sparse_model.partial_fit(sp.csc_matrix(tall[rows]))
        dense_model.partial_fit(tall[rows].toarray())
    assert_same_model(sparse_model, dense_model, tall)


def test_sparse_float32_stays_float32(tall):
    X = tall.astype(np.float32)
    model = AutoencoderTransformer(n_components=2, max_iter=2).fit(X)
    assert model.transform(X).dtype == np.float32
    assert_array_equal(model.transform(X), model.transform(X.toarray()))


def test_sparse_variational_and_outlier_detector_equal_dense(tall):
    D = tall.toarray()
    vae = dict(n_components=2, hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    sparse_vae = VariationalAutoencoder(**vae).fit(tall)
    assert_array_equal(
        sparse_vae.transform(tall),
        VariationalAutoencoder(**vae).fit(D).transform(D),
    )
    sparse_detector = AutoencoderOutlierDetector(AutoencoderTransformer(**vae)).fit(
        tall
    )
    dense_detector = AutoencoderOutlierDetector(AutoencoderTransformer(**vae)).fit(D)
    assert_array_equal(
        sparse_detector.decision_function(tall), dense_detector.decision_function(D)
    )
    assert_array_equal(sparse_detector.predict(tall), dense_detector.predict(D))


def test_sparse_input_in_a_pipeline(tall):
    """A MaxAbsScaler keeps X sparse on its way to the autoencoder."""
    pipeline = make_pipeline(
        MaxAbsScaler(), AutoencoderTransformer(n_components=2, max_iter=2)
    )
    assert pipeline.fit_transform(tall).shape == (90, 2)


def test_sparse_input_is_checked_like_dense():
    X = random_csr(30, 5, 2)
    X.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AutoencoderTransformer().fit(X)
    X.data[0] = 1e37
    with pytest.raises(ValueError, match=r"as large as 1e\+37"):
        AutoencoderTransformer().fit(X)
    X.data[0] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        AutoencoderTransformer(loss="binary_crossentropy").fit(X)
    model = AutoencoderTransformer(n_components=2, max_iter=1).fit(abs(X))
    X.data[0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.transform(X)


def test_duplicate_entries_are_summed_as_scipy_sums_them():
    X = sp.coo_array(([1.0, 2.0, 4.0], ([0, 0, 1], [1, 1, 0])), shape=(30, 3))
    model = AutoencoderTransformer(n_components=1, max_iter=1).fit(X)
    assert_array_equal(model.transform(X), model.transform(X.toarray()))
    assert model.mean_[1] == 3.0 / 30


def _peak_memory_reset():
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _memory(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"),
    reason="peak memory is read from Linux's /proc",
)
def test_sparse_fit_memory_grows_with_non_zeros_not_with_size():
    """20,000 x 10,000 at 0.1% density: dense would take 800 MB in float32."""
    X = random_csr(20_000, 10_000, 10, dtype=np.float32)
    dense_bytes = X.shape[0] * X.shape[1] * 4
    params = dict(
        n_components=2, hidden_layer_sizes=(), max_iter=1, early_stopping=False
    )
    # Torch's and the thread chooser's first-call allocations, out of the count.
    AutoencoderTransformer(**params).fit(X[:300]).transform(X[:300])
    _peak_memory_reset()
    before = _memory("VmRSS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoencoderTransformer(**params, random_state=0).fit(X)
    model.transform(X)
    growth = _memory("VmHWM") - before
    # Measured: about 100 MB (a few batches of 256 and 1024 rows, X's arrays).
    assert growth < dense_bytes / 3, f"{growth / 2**20:.0f} MB"
