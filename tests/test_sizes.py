"""Networks too large for the machine are refused before torch allocates them."""

import threading

import numpy as np
import pytest

import skae._sizes
from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
    epoch_callback,
)
from skae._sizes import count_words, memory_words

X = np.random.RandomState(0).normal(size=(30, 8))


@pytest.fixture
def four_gib(monkeypatch):
    """The same limit on every machine, so that the same networks are refused."""
    monkeypatch.setattr(skae._sizes, "memory_limit", lambda device: 4 * 2**30)


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (
            AutoencoderTransformer,
            {"n_components": 10**9},
            r"^n_components=1000000000 makes a network too large to train: .* 8 "
            r"features it has 2.6e\+11 weights and would take about .* TiB of memory",
        ),
        (
            AutoencoderTransformer,
            {"hidden_layer_sizes": (10**8,)},
            r"^hidden_layer_sizes=\(100000000,\) makes a network too large .* GiB",
        ),
        (
            AutoencoderTransformer,
            {"image_shape": (2, 2, 2), "conv_channels": (10**6,)},
            r"^conv_channels=\(1000000,\) makes a network too large",
        ),
        (
            VariationalAutoencoder,
            {"n_components": 10**30},
            r"^n_components=1e\+30 makes .* lower n_components\.$",
        ),
        (
            AutoencoderTransformer,
            {"hidden_layer_sizes": (10**400,)},
            r"hidden_layer_sizes=\(1e400,\) .* 1e401 weights .* than the 4.0 GiB",
        ),
    ],
    ids=["n_components", "hidden-layer", "conv-channels", "variational", "1e400"],
)
def test_a_network_too_large_is_refused_naming_the_parameter(
    cls, params, match, four_gib
):
    with pytest.raises(ValueError, match=match) as error:
        cls(**params).fit(X)
    assert len(str(error.value)) < 500


def test_a_failed_size_check_leaves_a_fitted_model_as_it_was():
    model = AutoencoderTransformer(hidden_layer_sizes=(4,), max_iter=2).fit(X)
    codes = model.transform(X)
    with pytest.raises(ValueError, match="too large to train"):
        model.set_params(n_components=10**9).fit(X)
    np.testing.assert_array_equal(model.set_params(n_components=2).transform(X), codes)


def test_the_limit_is_the_memory_this_process_may_use(monkeypatch):
    """Under a 1 MiB limit a 3000-wide layer (and its Adam moments) is too much."""
    monkeypatch.setattr(skae._sizes, "memory_limit", lambda device: 2**20)
    with pytest.raises(ValueError, match=r"more than the 1.0 MiB this process may"):
        AutoencoderTransformer(hidden_layer_sizes=(3000,)).fit(X)
    AutoencoderTransformer(hidden_layer_sizes=(8,), max_iter=1).fit(X)


def test_the_detector_checks_through_its_autoencoder():
    detector = AutoencoderOutlierDetector(AutoencoderTransformer(n_components=10**9))
    with pytest.raises(ValueError, match="n_components=1000000000 makes a network"):
        detector.fit(X)


def test_memory_limit_reads_the_address_space_limit():
    limit = skae._sizes.memory_limit(skae._sizes.torch.device("cpu"))
    assert (
        0
        < limit
        <= skae._sizes.os.sysconf("SC_PAGE_SIZE")
        * skae._sizes.os.sysconf("SC_PHYS_PAGES")
    )


@pytest.mark.parametrize(
    ("n_bytes", "words"),
    [
        (512, "512 bytes"),
        (2**20, "1.0 MiB"),
        (3 * 2**40, "3.0 TiB"),
        (10**400, "1e400"),
    ],
)
def test_memory_words(n_bytes, words):
    assert words in memory_words(n_bytes)
    assert len(memory_words(n_bytes)) < 30


def test_count_words():
    assert [count_words(n) for n in (12_800, 2.6e11, 10**402)] == [
        "12,800",
        "2.6e+11",
        "1e402",
    ]


def test_refit_sets_n_features_in_only_when_training_ends():
    """transform in another thread meanwhile sees the old model, whole."""
    model = AutoencoderTransformer(hidden_layer_sizes=(4,), max_iter=2).fit(X)
    old_codes = model.transform(X)
    wider = np.random.RandomState(1).normal(size=(30, 11))
    in_training, may_finish = threading.Event(), threading.Event()
    seen = {}

    def block(report):
        in_training.set()
        may_finish.wait(10)

    def refit():
        with epoch_callback(block):
            model.set_params(max_iter=1).fit(wider)

    thread = threading.Thread(target=refit)
    thread.start()
    try:
        assert in_training.wait(30)
        seen["n_features_in_"] = model.n_features_in_
        seen["codes"] = model.transform(X)
    finally:
        may_finish.set()
        thread.join()
    assert seen["n_features_in_"] == 8
    np.testing.assert_array_equal(seen["codes"], old_codes)
    assert model.n_features_in_ == 11
    assert model.transform(wider).shape == (30, 2)
