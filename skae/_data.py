# SPDX-License-Identifier: BSD-3-Clause
"""Data path: devices, NumPy <-> torch, and batched inference.

Nothing here knows about scikit-learn or about how a network was trained.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from skae._sparse import (
    SparseRows,
    dense_rows,
    is_sparse,
    value_range,
)

# Rows per inference batch: large enough to keep matrix products efficient, small
# enough that a batch of a few hundred features stays in the cache between its
# finiteness check and the network (larger batches were slower on MNIST), and
# that memory beyond the input and output arrays stays bounded.
INFERENCE_BATCH_SIZE = 1024


# The largest magnitude fit takes in X. Networks compute in float32, which
# holds up to 3.4e38; this leaves room for the standardisation's reciprocal to
# stay a normal float32 and for sums over a layer.
MAX_ABS_INPUT = 1e36


def check_input_range(X: Any) -> None:
    """Refuse training data (dense or sparse) beyond :data:`MAX_ABS_INPUT`."""
    if is_sparse(X):
        low, high = value_range(X)
        largest = max(-low, high)
    else:
        # Two passes without a temporary, where abs(X) would copy X.
        largest = max(-float(np.min(X)), float(np.max(X))) if X.size else 0.0
    if largest > MAX_ABS_INPUT:
        raise ValueError(
            f"X holds values as large as {largest:.3g} in magnitude, beyond the "
            f"{MAX_ABS_INPUT:.0e} skae trains on: its networks compute in float32, "
            "whose largest number is 3.4e+38. Rescale X first, for instance "
            "divide it by a power of ten or put a StandardScaler before the "
            "autoencoder in a Pipeline."
        )


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a user's device choice into a :class:`torch.device`.

    ``"auto"`` picks the first CUDA device when one is present, else the CPU.
    Asking for CUDA on a machine without it is an error, not a silent fallback.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
            "'cuda' or 'cuda:<index>'."
        ) from exc
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={device!r} is a {resolved.type!r} device, where skae does not "
            "run; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch sees no CUDA device on this "
            "machine; use device='auto' or device='cpu'."
        )
    return resolved


PRECISIONS = ("auto", "float32", "bfloat16")
# How many times faster a bfloat16 training step runs where the hardware has
# it natively (docs/scaling.rst; benchmarks/bench_training.py --precision).
BFLOAT16_SPEEDUP = 2.0


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware.

    CPUs with AVX-512 BF16 or AMX, and CUDA devices that support bfloat16.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype training runs under (None: plain float32).

    ``'auto'`` picks bfloat16 only where the device has it natively, since
    emulated bfloat16 is slower than float32; ``'bfloat16'`` elsewhere warns.
    """
    if precision == "float32":
        return None
    native = native_bfloat16(device)
    if precision == "auto":
        return torch.bfloat16 if native else None
    if not native:
        warnings.warn(
            f"precision='bfloat16' on a {device.type} device without native "
            "bfloat16: it is emulated, slower than float32 and less accurate. "
            "Use precision='auto' or 'float32' on this machine.",
            UserWarning,
            stacklevel=6,
        )
    return torch.bfloat16


def batch_bounds(n_samples: int, batch_size: int) -> list[tuple[int, int]]:
    """Split ``range(n_samples)`` into contiguous ``(start, stop)`` batches.

    A trailing batch of a single row is merged into the one before it: batch
    normalisation cannot train on one row, and a one-row step is mostly noise.
    """
    starts = list(range(0, n_samples, batch_size))
    if len(starts) > 1 and n_samples - starts[-1] == 1:
        starts.pop()
    stops = [*starts[1:], n_samples]
    return list(zip(starts, stops, strict=True))


def to_tensor(
    X: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Make a contiguous tensor of X on ``device``, sharing memory when it can."""
    X = np.ascontiguousarray(X)
    if not X.flags.writeable:
        # torch cannot share read-only memory (pandas' copy-on-write frames,
        # memory maps) and warns when asked to: copy into the tensor instead.
        return torch.tensor(X, dtype=dtype, device=device)
    return torch.as_tensor(X, dtype=dtype, device=device)


def iter_row_batches(
    X: Any, batch_size: int = INFERENCE_BATCH_SIZE
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, X[start:stop])`` without copying X as a whole.

    Rows of sparse X come dense, one batch at a time.
    """
    for start, stop in batch_bounds(X.shape[0], batch_size):
        yield start, stop, dense_rows(X[start:stop])


# Training data on the device: a dense tensor, or sparse rows made dense per batch.
Rows = torch.Tensor | SparseRows


def take_rows(X: Rows, rows: torch.Tensor) -> Rows:
    """Return ``X[rows]``; sparse rows stay sparse."""
    if isinstance(X, SparseRows):
        return X.take(rows)
    return X[rows.to(X.device)]


def batch_rows(X: Rows, rows: torch.Tensor) -> torch.Tensor:
    """Return ``X[rows]`` dense: a training batch gathered from X."""
    if isinstance(X, torch.Tensor):
        # index_select gathers rows several times faster than indexing does.
        return torch.index_select(X, 0, rows)
    return X[rows]


def mean_square(X: Rows) -> float:
    """Mean of the squares of X's entries, in float64, batch by batch.

    Batches keep the float64 copy small: a copy of all of X would take twice
    its float32 size, and its square as much again.
    """
    total = sum(
        float(torch.sum(X[start:stop].double() ** 2))
        for start, stop in batch_bounds(X.shape[0], INFERENCE_BATCH_SIZE)
    )
    return total / (X.shape[0] * X.shape[1])


def map_batches(
    function: Callable[[torch.Tensor], torch.Tensor],
    X: Any,
    n_outputs: int,
    *,
    device: torch.device,
    dtype: np.dtype,
    batch_size: int = INFERENCE_BATCH_SIZE,
    threads: AbstractContextManager[object] | None = None,
    check_rows: Callable[[np.ndarray], object] | None = None,
) -> np.ndarray:
    """Apply a tensor function to X batch by batch, into one output array.

    Batches go in as tensors of the output's dtype. Only one batch lives on the
    device at a time, so memory beyond X and the result stays bounded whatever
    the number of rows. ``threads`` is entered around each batch (it sets
    torch's thread count); ``None`` leaves the count alone. ``check_rows``,
    if given, is called with a batch's rows whose sum is not finite, before
    the function sees them: it may raise (NaN or infinity among them) or
    return (only the sum overflowed).
    """
    output = np.empty((X.shape[0], n_outputs), dtype=dtype)
    tensor_dtype = torch.from_numpy(output[:0]).dtype
    batch_threads = threads if threads is not None else nullcontext()
    with torch.inference_mode():
        for start, stop, rows in iter_row_batches(X, batch_size):
            with batch_threads:
                batch = to_tensor(rows, device, tensor_dtype)
                if check_rows is not None and not torch.isfinite(batch.sum()):
                    check_rows(rows)
                result = function(batch)
            output[start:stop] = result.cpu().numpy()
    return output
