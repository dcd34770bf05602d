"""Fit and inference time on a quiet and on a busy machine, by thread count.

Run from the repository root::

    python benchmarks/bench_threads.py                  # quiet, then busy
    python benchmarks/bench_threads.py --scenario busy --repeats 5
    python benchmarks/bench_threads.py --startup        # first-fit start-up only

Two workloads, each fitted in one process (after one untimed warm-up fit) in
three ways, round-robin, median of the repeats:

- ``auto``: skae's own choice of torch threads (the default);
- ``pinned 1``: inside ``skae.fixed_threads(1)``;
- ``pinned N``: inside ``skae.fixed_threads(N)``, N = ``torch.get_num_threads()``.

The workloads are the digits (1797 x 64, ``n_components=8``, 30 epochs), whose
steps are small enough that skae runs them on one thread by rule, and 10,000
MNIST rows (``n_components=32``, 2 epochs; a synthetic stand-in of the same
shape without ``../shared/data/mnist.npz``), whose steps are timed. Each
also times ``transform`` of 10,000 rows (auto and pinned) right after a fit.

The busy scenario starts a competitor process that spins in a loop on one
core (the last core this process may use), waits for it to run, and stops it
when the scenario ends. The targets: busy, auto <= 1.25 x pinned 1; quiet,
auto close to the best pinned count.

``--startup`` times, in fresh interpreters, importing torch, scikit-learn and
skae, then ``torch._dynamo`` (which torch's optimizers import when first
used, in any program that trains with them), then the first and second fit
of a small model: what the first fit still costs beyond the second is skae's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, fixed_threads

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"

STARTUP = """
import time
start = time.perf_counter()
import torch
after_torch = time.perf_counter()
import sklearn.decomposition, sklearn.model_selection
after_sklearn = time.perf_counter()
import skae
after_skae = time.perf_counter()
# torch's optimizers import this on their first use (torch._disable_dynamo).
import torch._dynamo
after_dynamo = time.perf_counter()
import warnings
import numpy as np
warnings.simplefilter("ignore")
X = np.random.RandomState(0).normal(size=(500, 20)).astype(np.float32)
fit_start = time.perf_counter()
skae.AutoencoderTransformer(4, max_iter=3, random_state=0).fit(X)
first = time.perf_counter()
skae.AutoencoderTransformer(4, max_iter=3, random_state=0).fit(X)
second = time.perf_counter()
print(after_torch - start, after_sklearn - after_torch, after_skae - after_sklearn,
      after_dynamo - after_skae, first - fit_start, second - first)
"""


def load_mnist(n_rows: int) -> tuple[np.ndarray, str]:
    if DATA.exists():
        with np.load(DATA) as data:
            images = data["x_train"][:n_rows]
        return images.reshape(n_rows, -1).astype(np.float32) / 255, "MNIST"
    rng = np.random.default_rng(0)
    basis = rng.random((64, 784)).astype(np.float32) ** 8
    codes = rng.random((n_rows, 64)).astype(np.float32) ** 4
    return np.clip(codes @ basis, 0, 1), "synthetic MNIST stand-in"


def workloads() -> dict[str, tuple[np.ndarray, dict[str, object]]]:
    digits = load_digits().data.astype(np.float32)
    mnist, _ = load_mnist(10000)
    return {
        "digits, k=8, 30 epochs": (
            digits,
            {"n_components": 8, "max_iter": 30, "random_state": 0},
        ),
        "MNIST 10k, k=32, 2 epochs": (
            mnist,
            {"n_components": 32, "max_iter": 2, "random_state": 0},
        ),
    }


@contextlib.contextmanager
def competitor(busy: bool) -> Iterator[str]:
    """A process spinning on the last allowed core, for the block's duration."""
    if not busy:
        yield "none"
        return
    core = max(os.sched_getaffinity(0))
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(1.0)  # let it start and take its core
        yield f"one process spinning on core {core} (pid {process.pid})"
    finally:
        process.terminate()
        process.wait()


def pinned(n_threads: int | None) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext() if n_threads is None else fixed_threads(n_threads)


def fit(X: np.ndarray, params: dict[str, object]) -> AutoencoderTransformer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return AutoencoderTransformer(**params).fit(X)


def measure(
    X: np.ndarray, params: dict[str, object], repeats: int
) -> dict[str, dict[str, float]]:
    """Median fit and transform seconds of each configuration, round-robin."""
    n_max = torch.get_num_threads()
    configs = {"auto": None, "pinned 1": 1, f"pinned {n_max}": n_max}
    X_transform = np.resize(X, (10000, X.shape[1]))
    fit(X, params)  # warm-up: one-time start-up costs are not the subject here
    fits: dict[str, list[float]] = {name: [] for name in configs}
    transforms: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(repeats):
        for name, n_threads in configs.items():
            with pinned(n_threads):
                start = time.perf_counter()
                ae = fit(X, params)
                fits[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                ae.transform(X_transform)
                transforms[name].append(time.perf_counter() - start)
    return {
        "fit": {name: statistics.median(times) for name, times in fits.items()},
        "transform": {
            name: statistics.median(times) for name, times in transforms.items()
        },
    }


def report(scenario: str, results: dict[str, dict[str, dict[str, float]]]) -> None:
    for workload, timings in results.items():
        for kind, seconds in timings.items():
            cells = "  ".join(
                f"{name} {value:7.3f} s" for name, value in seconds.items()
            )
            auto = seconds["auto"]
            best = min(value for name, value in seconds.items() if name != "auto")
            print(
                f"{scenario:5s} {workload:26s} {kind:9s} {cells}  "
                f"auto/pinned 1 {auto / seconds['pinned 1']:.2f}  "
                f"auto/best pinned {auto / best:.2f}"
            )


def startup(repeats: int) -> None:
    names = [
        "import torch",
        "import sklearn",
        "import skae",
        "torch._dynamo",
        "first fit",
        "second fit",
    ]
    runs = []
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, "-c", STARTUP], capture_output=True, text=True, check=True
        ).stdout
        runs.append([float(value) for value in output.split()])
    medians = np.median(np.array(runs), axis=0)
    print(f"start-up in a fresh interpreter, median of {repeats}:")
    for name, seconds in zip(names, medians, strict=True):
        print(f"  {name:15s} {seconds:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["quiet", "busy", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--startup", action="store_true", help="start-up cost only")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}"
    )
    if args.startup:
        startup(args.repeats)
        return
    data = workloads()
    scenarios = ["quiet", "busy"] if args.scenario == "both" else [args.scenario]
    for scenario in scenarios:
        with competitor(scenario == "busy") as other:
            print(f"{scenario}: competitor {other}")
            results = {
                name: measure(X, params, args.repeats)
                for name, (X, params) in data.items()
            }
        report(scenario, results)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
