"""How many torch threads each fit and inference uses, and inference's folding."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

import skae._threads
from skae import AutoencoderTransformer, VariationalAutoencoder, fixed_threads
from skae._inference import inference_module
from skae._networks import LinearWithResidual
from skae._threads import (
    SMALL_STEP,
    TRAINING_STEP_FACTOR,
    ThreadChooser,
    choose_threads,
    multiply_adds_per_row,
    pinned_threads,
)


@pytest.fixture
def no_remembered_choice(monkeypatch):
    monkeypatch.setattr(skae._threads, "_latest", None)


class CountingLinear(nn.Linear):
    """A linear layer that records torch's thread count at each batch.

    Two-row calls are skae counting the network's work, not steps: not recorded.
    """

    seen: ClassVar[list[int]] = []

    def forward(self, x):
        if x.shape[0] > 2:
            CountingLinear.seen.append(torch.get_num_threads())
        return super().forward(x)


def counting_network(n_features, n_outputs):
    return (
        nn.Sequential(
            CountingLinear(n_features, 8), nn.ReLU(), nn.Linear(8, n_outputs)
        ),
        nn.Sequential(nn.Linear(n_outputs, 8), nn.ReLU(), nn.Linear(8, n_features)),
    )


def test_multiply_adds_count_linear_and_convolutional_layers():
    dense = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 3))
    assert multiply_adds_per_row(dense, torch.zeros(4, 10)) == 10 * 5 + 5 * 3
    conv = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ConvTranspose2d(2, 1, 2, stride=2)
    )
    # 2 x 8 x 8 outputs of 9 products; 2 x 8 x 8 inputs spread over 4 products.
    assert multiply_adds_per_row(conv, torch.zeros(3, 1, 8, 8)) == 128 * 9 + 128 * 4
    dense.train()
    multiply_adds_per_row(dense, torch.zeros(4, 10))
    assert dense.training


def test_small_steps_run_on_one_thread_whatever_the_ceiling():
    small = nn.Linear(64, 64)
    rows = torch.zeros(2, 64)
    assert choose_threads(small, rows, 256, 4, training=True).candidates == [1]
    assert 64 * 64 * 256 < SMALL_STEP


def test_a_training_step_counts_its_backward_pass():
    """The same batch is a large step in training and a small one in inference."""
    layer, rows = nn.Linear(1000, 250), torch.zeros(2, 1000)
    forward = 1000 * 250 * 256
    assert forward < SMALL_STEP <= TRAINING_STEP_FACTOR * forward
    assert choose_threads(layer, rows, 256, 2, training=True).candidates == [1, 2]
    assert choose_threads(layer, rows, 256, 2, training=False).candidates == [1]


def test_large_steps_try_every_power_of_two_up_to_the_ceiling():
    large = nn.Linear(1000, 1000)
    rows = torch.zeros(2, 1000)
    chooser = choose_threads(large, rows, 256, 6, training=True)
    assert chooser.candidates == [1, 2, 4, 6]
    assert choose_threads(large, rows, 256, 1, training=True).candidates == [1]


def test_fixed_threads_pins_the_count_within_the_ceiling():
    large, rows = nn.Linear(1000, 1000), torch.zeros(2, 1000)
    with fixed_threads(2):
        assert choose_threads(large, rows, 256, 4, training=True).candidates == [2]
        assert choose_threads(large, rows, 256, 1, training=True).candidates == [1]
        with fixed_threads(3):
            assert choose_threads(large, rows, 256, 4, training=False).candidates == [3]
        assert pinned_threads() == 2
    assert pinned_threads() is None


@pytest.mark.parametrize(
    ("n_threads", "error", "message"),
    [
        (0, ValueError, "n_threads must be at least 1, got 0"),
        (1.5, TypeError, "n_threads must be an int, got 1.5"),
        (True, TypeError, "n_threads must be an int, got True"),
        ("2", TypeError, "n_threads must be an int, got '2'"),
    ],
)
def test_fixed_threads_rejects_non_counts(n_threads, error, message):
    with pytest.raises(error, match=message):
        with fixed_threads(n_threads):
            pass
    assert pinned_threads() is None


def test_fixed_threads_in_two_threads_each_keep_their_own():
    """A enters 1, B enters 2: A still sees 1, and nothing is left behind."""
    a_entered, b_entered, b_left = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )
    seen = {}

    def thread_a():
        with fixed_threads(1):
            a_entered.set()
            b_entered.wait(5)
            seen["a with b inside"] = pinned_threads()
            b_left.wait(5)
            seen["a after b left"] = pinned_threads()

    def thread_b():
        a_entered.wait(5)
        with fixed_threads(2):
            b_entered.set()
            seen["b"] = pinned_threads()
            time.sleep(0.01)
        b_left.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a with b inside": 1, "a after b left": 1, "b": 2}
    assert pinned_threads() is None


def test_fixed_threads_from_many_threads_at_once_nests_and_leaves_nothing():
    """8 threads x 300 blocks, nested, ending in any order: each sees its own."""
    errors = []
    start = threading.Barrier(8)

    def worker(index):
        start.wait()
        for round_ in range(300):
            outer, inner = index + 1, 100 + (index + round_) % 7
            with fixed_threads(outer):
                if pinned_threads() != outer:
                    errors.append((index, round_, "outer", pinned_threads()))
                with fixed_threads(inner):
                    if pinned_threads() != inner:
                        errors.append((index, round_, "inner", pinned_threads()))
                if pinned_threads() != outer:
                    errors.append((index, round_, "after inner", pinned_threads()))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert errors == []
    assert pinned_threads() is None


def test_a_thread_without_a_block_follows_the_latest_one():
    """joblib's threading workers inherit the setting of the thread that pinned."""
    with fixed_threads(3), ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: pinned_threads(), range(4))) == [3] * 4
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(pinned_threads).result() is None


def timed_steps(chooser, n_steps, seconds_at):
    """Run steps that sleep ``seconds_at[threads]``; the thread count of each."""
    counts = []
    for _ in range(n_steps):
        with chooser:
            counts.append(torch.get_num_threads())
            time.sleep(seconds_at[counts[-1]])
    return counts


def test_chooser_settles_on_the_fastest_count_and_measures_again(
    torch_threads, no_remembered_choice
):
    chooser = ThreadChooser([1, 2, 4], n_timed=3, n_exploit=10)
    assert torch.get_num_threads() == 1
    counts = timed_steps(chooser, 12 + 10 + 12, {1: 0.006, 2: 0.005, 4: 0.002})
    # Measuring: an untimed then three timed steps per candidate.
    assert counts[:12] == [1] * 4 + [2] * 4 + [4] * 4
    assert counts[12:22] == [4] * 10
    assert counts[22:] == [1] * 4 + [2] * 4 + [4] * 4
    assert skae._threads._recent_choice(4) == 4
    assert skae._threads._recent_choice(2) == 2


def test_chooser_drops_a_much_slower_count_after_one_step(
    torch_threads, no_remembered_choice
):
    chooser = ThreadChooser([1, 2, 4], n_timed=3, n_exploit=10)
    counts = timed_steps(chooser, 4 + 1 + 4 + 5, {1: 0.01, 2: 0.05, 4: 0.002})
    assert counts == [1] * 4 + [2] + [4] * 4 + [4] * 5


def test_inference_starts_from_the_latest_measured_choice(
    torch_threads, no_remembered_choice
):
    large, rows = nn.Linear(1000, 1000), torch.zeros(2, 1000)
    assert choose_threads(large, rows, 4096, 4, training=False).current == 4
    skae._threads._remember(1)
    chooser = choose_threads(large, rows, 4096, 4, training=False)
    assert chooser.current == 1
    assert timed_steps(chooser, 3, {1: 0, 2: 0, 4: 0}) == [1, 1, 1]


def test_small_fit_and_inference_run_on_one_thread(small_data, torch_threads):
    CountingLinear.seen = []
    ae = AutoencoderTransformer(
        2, network=counting_network, max_iter=3, random_state=0
    ).fit(small_data)
    ae.transform(small_data)
    assert CountingLinear.seen and set(CountingLinear.seen) == {1}
    assert torch.get_num_threads() == torch_threads


def test_fixed_threads_reaches_fit_and_inference(small_data, torch_threads):
    CountingLinear.seen = []
    with fixed_threads(2):
        ae = AutoencoderTransformer(
            2, network=counting_network, max_iter=3, random_state=0
        ).fit(small_data)
        ae.transform(small_data)
    assert CountingLinear.seen and set(CountingLinear.seen) == {2}
    assert torch.get_num_threads() == torch_threads


def test_fits_with_a_pinned_count_are_bit_identical(small_data, torch_threads):
    def fit():
        with fixed_threads(2):
            ae = AutoencoderTransformer(3, max_iter=5, random_state=0).fit(small_data)
            return ae.loss_curve_, ae.transform(small_data)

    (curve_a, codes_a), (curve_b, codes_b) = fit(), fit()
    assert curve_a == curve_b
    np.testing.assert_array_equal(codes_a, codes_b)


def test_small_batch_norm_fits_are_bit_identical_unpinned(small_data, torch_threads):
    """Batch statistics add in a thread-dependent order; small steps use one."""

    def fit():
        ae = AutoencoderTransformer(3, batch_norm=True, max_iter=5, random_state=0)
        ae = ae.fit(small_data)
        return ae.loss_curve_, ae.transform(small_data)

    (curve_a, codes_a), (curve_b, codes_b) = fit(), fit()
    assert curve_a == curve_b
    np.testing.assert_array_equal(codes_a, codes_b)


# -- folding the standardisation into the network at inference ----------------


def unfolded(ae, X):
    """transform, inverse_transform and score_samples without folding."""
    X_t = torch.as_tensor(X)
    with torch.no_grad():
        encoder = ae.encoder_.to(X_t.dtype)
        decoder = ae.decoder_.to(X_t.dtype)
        codes = encoder(X_t)
        reconstructions = decoder(codes)
        errors = torch.mean((reconstructions - X_t) ** 2, dim=1)
        ae.encoder_.float(), ae.decoder_.float()
    return codes.numpy(), reconstructions.numpy(), -errors.numpy()


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderTransformer(3, max_iter=5, random_state=0),
        AutoencoderTransformer(3, init="random", max_iter=5, random_state=0),
        AutoencoderTransformer(3, batch_norm=True, max_iter=5, random_state=0),
        VariationalAutoencoder(3, max_iter=5, random_state=0),
    ],
    ids=["pca-start", "random-start", "batch-norm", "variational"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_folded_inference_matches_the_fitted_modules(small_data, estimator, dtype):
    X = (small_data * 10 + 100).astype(dtype)  # a mean and scale far from 0 and 1
    ae = estimator.fit(X)
    codes, reconstructions, scores = unfolded(ae, X)
    tolerance = {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {}
    np.testing.assert_allclose(ae.transform(X), codes, **tolerance)
    np.testing.assert_allclose(
        ae.inverse_transform(codes), reconstructions, **tolerance
    )
    np.testing.assert_allclose(ae.score_samples(X), scores, rtol=1e-3)
    folded = inference_module(ae.encoder_, torch.device("cpu"), torch.float32)
    assert folded is not ae.encoder_
    assert not any(type(m).__name__ == "Standardize" for m in folded.modules())


def test_pca_start_folds_into_both_paths(small_data):
    ae = AutoencoderTransformer(3, max_iter=2, random_state=0).fit(small_data)
    folded = inference_module(ae.decoder_, torch.device("cpu"), torch.float32)
    assert isinstance(folded, LinearWithResidual)


def test_networks_without_linear_ends_run_unfolded(small_data):
    def ends_in_tanh(n_features, n_outputs):
        return (
            nn.Sequential(nn.Tanh(), nn.Linear(n_features, n_outputs)),
            nn.Sequential(nn.Linear(n_outputs, n_features), nn.Tanh()),
        )

    ae = AutoencoderTransformer(
        3, network=ends_in_tanh, max_iter=2, random_state=0
    ).fit(small_data)
    cpu = torch.device("cpu")
    assert inference_module(ae.encoder_, cpu, torch.float32) is ae.encoder_
    assert inference_module(ae.decoder_, cpu, torch.float32) is ae.decoder_
    codes, _, _ = unfolded(ae, small_data.astype(np.float32))
    np.testing.assert_array_equal(ae.transform(small_data.astype(np.float32)), codes)


def test_editing_fitted_weights_reaches_inference(small_data):
    ae = AutoencoderTransformer(3, max_iter=2, random_state=0).fit(small_data)
    before = ae.transform(small_data)
    with torch.no_grad():
        for parameter in ae.encoder_.parameters():
            parameter.mul_(2)
    after = ae.transform(small_data)
    np.testing.assert_allclose(after, unfolded(ae, small_data)[0], rtol=1e-6)
    assert not np.allclose(after, before)
