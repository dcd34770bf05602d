"""Device resolution, numpy <-> tensor, batching."""

import numpy as np
import pytest
import torch

from skae._data import batch_bounds, map_batches, resolve_device, to_tensor


def test_auto_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_device_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_cuda_requested_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        resolve_device("cuda:1")


def test_invalid_device_string():
    with pytest.raises(ValueError, match="not a valid torch device"):
        resolve_device("gpu please")


def test_explicit_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    ("n_samples", "batch_size"), [(10, 3), (10, 5), (1, 4), (7, 7), (9, 4)]
)
def test_batch_bounds_cover_every_row_once(n_samples, batch_size):
    bounds = batch_bounds(n_samples, batch_size)
    covered = [row for start, stop in bounds for row in range(start, stop)]
    assert covered == list(range(n_samples))
    assert all(stop - start > 1 for start, stop in bounds) or n_samples == 1


def test_trailing_single_row_is_merged():
    assert batch_bounds(9, 4) == [(0, 4), (4, 9)]


def test_to_tensor_dtype_and_sharing():
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = to_tensor(X, torch.device("cpu"))
    assert tensor.dtype == torch.float32
    assert np.shares_memory(tensor.numpy(), X)
    assert (
        to_tensor(np.asfortranarray(X.astype(np.float64)), torch.device("cpu")).dtype
        == torch.float32
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_map_batches_matches_whole_array(dtype):
    X = np.random.RandomState(0).normal(size=(23, 4)).astype(dtype)
    out = map_batches(
        lambda x: 2 * x[:, :2],
        X,
        2,
        device=torch.device("cpu"),
        dtype=dtype,
        batch_size=5,
    )
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, 2 * X[:, :2])


def test_map_batches_checks_only_batches_whose_sum_is_not_finite():
    X = np.ones((12, 3), dtype=np.float32)
    X[5, 0] = np.nan
    X[10:, :] = 3e38  # finite rows whose float32 sum overflows
    checked = []
    out = map_batches(
        lambda x: x[:, :1],
        X,
        1,
        device=torch.device("cpu"),
        dtype=np.float32,
        batch_size=4,
        check_rows=lambda rows: checked.append(rows.copy()),
    )
    # Batches 4-7 (NaN) and 8-11 (overflowing sum) were checked; a check that
    # returns lets the batch through.
    assert [rows.shape for rows in checked] == [(4, 3), (4, 3)]
    assert np.isnan(checked[0][1, 0]) and checked[1][-1, 0] == np.float32(3e38)
    np.testing.assert_array_equal(out, X[:, :1])
