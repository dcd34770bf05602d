# SPDX-License-Identifier: BSD-3-Clause
"""Peak memory of inference on 1 000 000 x 784 float32 rows, beyond input and output.

``transform``, ``score_samples`` and ``inverse_transform`` run in batches, so
the memory they need on top of the input and the output they return should
not grow with the number of rows. This script fits a model (MNIST's width,
the default layers, 16 components) on a few rows, builds the large input
(in memory, or as a ``numpy.memmap`` on disk with ``--memmap``), and measures
each call's peak resident memory on Linux:

- ``VmHWM`` from ``/proc/self/status``, the kernel's exact high-water mark,
  reset before each call through ``/proc/self/clear_refs``;
- ``RssAnon`` sampled every millisecond during the call, which leaves out the
  pages of a memory-mapped input file.

"beyond" is the peak minus the resident memory before the call, the output's
size and, for a memmap input, the input's size (its pages become resident as
the call reads them). Run from the repository root::

    python benchmarks/bench_memory.py                  # in-memory input
    python benchmarks/bench_memory.py --memmap rows.f32
    python benchmarks/bench_memory.py --n-samples 200000 --methods transform

``inverse_transform`` returns an array as large as the input (3.1 GB at the
default size), so the default run needs about 7 GB of free memory.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

MiB = 2**20
N_FEATURES = 784
N_COMPONENTS = 16
CHUNK_ROWS = 50_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument(
        "--memmap", type=Path, help="write the input to this file and map it"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["transform", "score_samples", "inverse_transform"],
        choices=["transform", "score_samples", "inverse_transform"],
    )
    return parser.parse_args()


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


class AnonSampler:
    """Peak of RssAnon, sampled in a background thread."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval, self.peak_kib = interval, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak_kib = max(self.peak_kib, status_kib("RssAnon"))
            time.sleep(self.interval)

    def __enter__(self) -> AnonSampler:
        self.peak_kib = status_kib("RssAnon")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, status_kib("RssAnon"))


def make_input(n_samples: int, memmap: Path | None) -> np.ndarray:
    """Uniform [0, 1) float32 rows, like scaled pixels, written chunk by chunk."""
    rng = np.random.default_rng(0)
    shape = (n_samples, N_FEATURES)
    if memmap is None:
        X = np.empty(shape, dtype=np.float32)
    else:
        X = np.memmap(memmap, dtype=np.float32, mode="w+", shape=shape)
    for start in range(0, n_samples, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n_samples)
        X[start:stop] = rng.random((stop - start, N_FEATURES), dtype=np.float32)
    if memmap is not None:
        X.flush()
    return X


def open_memmap(path: Path, n_samples: int) -> np.ndarray:
    """A fresh read-only map of the input: none of its pages resident yet."""
    return np.memmap(path, dtype=np.float32, mode="r", shape=(n_samples, N_FEATURES))


def measure(
    call: Callable[[], np.ndarray], input_bytes: int
) -> tuple[np.ndarray, dict[str, float]]:
    rss_before = status_kib("VmRSS")
    anon_before = status_kib("RssAnon")
    exact = reset_peak()
    start = time.perf_counter()
    with AnonSampler() as sampler:
        output = call()
    seconds = time.perf_counter() - start
    output_kib = output.nbytes / 1024
    hwm_beyond = status_kib("VmHWM") - rss_before - output_kib - input_bytes / 1024
    anon_beyond = sampler.peak_kib - anon_before - output_kib
    return output, {
        "seconds": seconds,
        "output MiB": output.nbytes / MiB,
        "VmHWM beyond MiB": hwm_beyond / 1024 if exact else float("nan"),
        "RssAnon beyond MiB": anon_beyond / 1024,
    }


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(1)
    ae = AutoencoderTransformer(n_components=N_COMPONENTS, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(rng.random((2000, N_FEATURES), dtype=np.float32))

    start = time.perf_counter()
    X = make_input(args.n_samples, args.memmap)
    made = time.perf_counter() - start
    input_mib = X.nbytes / MiB
    source = f"memmap {args.memmap}" if args.memmap else "in memory"
    print(
        f"input {X.shape} float32 {input_mib:.0f} MiB ({source}, made in "
        f"{made:.0f} s); model hidden_layer_sizes={ae.hidden_layer_sizes}, "
        f"n_components={N_COMPONENTS}; cores={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    codes = None
    rows = []
    for method in args.methods:
        if args.memmap:
            # Unmap the last map, so that the input's pages are counted anew.
            del X
            X = open_memmap(args.memmap, args.n_samples)
        if method == "inverse_transform":
            if codes is None:
                codes = ae.transform(X)
            argument, input_bytes = codes, 0
        else:
            # A memmap's pages join the process as the call reads them: they
            # are input. An in-memory input is resident before the call.
            argument, input_bytes = X, X.nbytes if args.memmap else 0
        output, numbers = measure(
            lambda m=method, a=argument: getattr(ae, m)(a), input_bytes
        )
        if method == "transform":
            codes = output
        del output, argument
        rows.append((method, numbers))

    header = ["seconds", "output MiB", "VmHWM beyond MiB", "RssAnon beyond MiB"]
    print(f"{'method':18s}" + "".join(f"{name:>20s}" for name in header))
    for method, numbers in rows:
        print(f"{method:18s}" + "".join(f"{numbers[name]:20.1f}" for name in header))
    if args.memmap:
        del X
        args.memmap.unlink()


if __name__ == "__main__":
    main()
