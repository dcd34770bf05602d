# SPDX-License-Identifier: BSD-3-Clause
"""Wall time of a grid search over AutoencoderTransformer, n_jobs=1 versus 2.

Runs the same ``GridSearchCV`` (digits, 4 candidates x 3 folds = 12 fits,
no refit) sequentially, on joblib's loky backend (fresh workers, then the same workers
again) and on its threading backend, round-robin so that changing load on the machine
hits every configuration alike, and prints one table: wall time, and the CPU
time of the parent process. It also reports what each worker starts with:
torch's intra-op thread count, and the time a fresh loky worker takes to
start and import skae (torch, scikit-learn).

Run from the repository root::

    python benchmarks/bench_parallel.py            # 3 repeats
    python benchmarks/bench_parallel.py --repeats 5 --max-iter 30
    python benchmarks/bench_parallel.py --dask     # needs skae[dask]

``--dask`` adds the same search on a local two-worker Dask cluster through
joblib's ``dask`` backend, and times ``transform`` of Dask blocks through
dask-ml's ``ParallelPostFit``.

Timings are sensitive to other load on the machine: the output starts with
the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import warnings
from collections.abc import Callable

import joblib
import numpy as np
import torch
from joblib.externals.loky import get_reusable_executor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skae import AutoencoderTransformer

GRID = {"n_components": [2, 12], "hidden_layer_sizes": [(64,), (128, 64)]}
# Width of the rows transform() is timed on: MNIST's, a common image size.
N_FEATURES = 784


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=15)
    parser.add_argument(
        "--dask",
        action="store_true",
        help="also search on a local two-worker Dask cluster (skae[dask])",
    )
    return parser.parse_args()


def worker_state(_: int) -> tuple[int, int, float]:
    """Process id, torch threads and seconds since the process started."""
    import skae  # noqa: F401  (time the import as part of start-up)

    with open(f"/proc/{os.getpid()}/stat") as stat:
        start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as uptime:
        uptime_s = float(uptime.read().split()[0])
    age = uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")
    return os.getpid(), torch.get_num_threads(), age


def fresh_loky_workers() -> None:
    get_reusable_executor().shutdown(wait=True)


def search(X: np.ndarray, n_jobs: int, max_iter: int) -> None:
    grid = GridSearchCV(
        AutoencoderTransformer(max_iter=max_iter, random_state=0),
        GRID,
        cv=3,
        n_jobs=n_jobs,
        # The refit is one fit in this process whatever n_jobs: leave it out.
        refit=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X)


@contextlib.contextmanager
def torch_threads(n_threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def start_dask_cluster(stack: contextlib.ExitStack) -> str:
    """Start two single-threaded local workers with skae imported; a summary."""
    import distributed

    start = time.perf_counter()
    cluster = stack.enter_context(
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        )
    )
    client = stack.enter_context(distributed.Client(cluster))
    started = time.perf_counter() - start
    client.run(worker_state, 0)
    ready = time.perf_counter() - start
    threads = sorted(client.run(torch.get_num_threads).values())
    return (
        f"Dask LocalCluster: 2 workers up in {started:.1f} s, skae imported on "
        f"them after {ready:.1f} s; torch threads {threads}"
    )


def dask_transform(n_samples: int = 200_000) -> str:
    """Time ParallelPostFit.transform over Dask blocks against one process."""
    import dask.array as da
    from dask_ml.wrappers import ParallelPostFit

    X = np.random.default_rng(0).random((n_samples, N_FEATURES), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae = AutoencoderTransformer(n_components=16, max_iter=2, random_state=0)
        ae.fit(X[:2000])
    start = time.perf_counter()
    ae.transform(X)
    local = time.perf_counter() - start
    # Blocks made on the workers: only the codes travel back.
    X_dask = da.random.default_rng(0).random(
        (n_samples, N_FEATURES),
        chunks=(n_samples // 10, N_FEATURES),
        dtype=np.float32,
    )
    start = time.perf_counter()
    ParallelPostFit(ae).transform(X_dask).compute()
    spread = time.perf_counter() - start
    return (
        f"transform {n_samples} x {N_FEATURES} float32, default layers, "
        "16 components: "
        f"{local:.1f} s in this process, {spread:.1f} s via ParallelPostFit on "
        "the 2 workers (blocks generated there)"
    )


def configurations(
    X: np.ndarray, dask: bool
) -> dict[str, tuple[Callable[[], object], Callable[[], None]]]:
    """Label -> (context to run in, untimed preparation)."""
    nothing = contextlib.nullcontext

    def threading_backend():
        return joblib.parallel_config(backend="threading")

    return {
        "n_jobs=1": (nothing, lambda: None),
        "n_jobs=1, torch.set_num_threads(1)": (lambda: torch_threads(1), lambda: None),
        "loky n_jobs=2, fresh workers": (nothing, fresh_loky_workers),
        "loky n_jobs=2, warm workers": (nothing, lambda: search(X, 2, 1)),
        "threading n_jobs=2": (threading_backend, lambda: None),
    } | (
        {
            "dask backend, 2 local workers": (
                lambda: joblib.parallel_config(backend="dask"),
                lambda: None,
            )
        }
        if dask
        else {}
    )


def main() -> None:
    args = parse_args()
    X = load_digits().data / 16.0
    load_before = os.getloadavg()

    fresh_loky_workers()
    start = time.perf_counter()
    states = joblib.Parallel(n_jobs=2)(
        joblib.delayed(worker_state)(i) for i in range(2)
    )
    first_task = time.perf_counter() - start
    with joblib.parallel_config(backend="threading", n_jobs=2):
        thread_threads = joblib.Parallel()(
            joblib.delayed(torch.get_num_threads)() for _ in range(2)
        )

    stack = contextlib.ExitStack()
    dask_lines = [start_dask_cluster(stack)] if args.dask else []
    runs = configurations(X, args.dask)
    walls: dict[str, list[float]] = {label: [] for label in runs}
    cpus: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(args.repeats):
        for label, (context, prepare) in runs.items():
            prepare()
            n_jobs = 1 if label.startswith("n_jobs=1") else 2
            with context():
                wall, cpu = time.perf_counter(), time.process_time()
                search(X, n_jobs, args.max_iter)
                walls[label].append(time.perf_counter() - wall)
                cpus[label].append(time.process_time() - cpu)
    if args.dask:
        dask_lines.append(dask_transform())
    stack.close()
    load_after = os.getloadavg()

    print(
        f"cores={os.cpu_count()} torch={torch.__version__} "
        f"torch threads (parent)={torch.get_num_threads()} "
        f"load average before={load_before[0]:.2f} after={load_after[0]:.2f}"
    )
    print(
        "loky workers: torch threads "
        + ", ".join(str(threads) for _, threads, _ in states)
        + "; start-up incl. importing skae "
        + ", ".join(f"{age:.1f} s" for _, _, age in states)
        + f"; first task returned after {first_task:.1f} s"
    )
    print(
        "threading workers before skae runs: torch threads "
        + ", ".join(str(threads) for threads in thread_threads)
    )
    for line in dask_lines:
        print(line)
    print(
        f"GridSearchCV on digits {X.shape}, 4 candidates x 3 folds, "
        f"max_iter={args.max_iter}, {args.repeats} repeats (round-robin)"
    )
    print(f"{'configuration':40s} {'wall min':>9s} {'median':>7s} {'parent CPU':>11s}")
    for label in runs:
        wall_min, wall_median = min(walls[label]), statistics.median(walls[label])
        cpu = statistics.median(cpus[label])
        print(f"{label:40s} {wall_min:8.2f}s {wall_median:6.2f}s {cpu:10.2f}s")


if __name__ == "__main__":
    main()
