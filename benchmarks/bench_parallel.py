# SPDX-License-Identifier: BSD-3-Clause
"""Wall time of a grid search over AutoencoderTransformer, n_jobs=1 versus 2.

Runs the same ``GridSearchCV`` (digits, 4 candidates x 3 folds = 12 fits)
sequentially, on joblib's loky backend (fresh workers, then the same workers
again) and on its threading backend, and prints one table. It also reports
what each worker starts with: torch's intra-op thread count, and the time a
fresh loky worker takes to start and import skae (torch, scikit-learn).

Run from the repository root::

    python benchmarks/bench_parallel.py            # 3 repeats
    python benchmarks/bench_parallel.py --repeats 5 --max-iter 30

``--no-budget`` runs the threading backend without skae's thread budget
(every thread then runs torch's full thread count), to see what the budget
buys. Timings are wall-clock and sensitive to other load on the machine: the
table starts with the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import warnings

import joblib
import numpy as np
import torch
from joblib.externals.loky import get_reusable_executor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skae._autoencoder
from skae import AutoencoderTransformer

GRID = {"n_components": [2, 12], "hidden_layer_sizes": [(64,), (128, 64)]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=15)
    parser.add_argument(
        "--no-budget",
        action="store_true",
        help="disable skae's thread budget (threading backend oversubscribes)",
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


def search(X: np.ndarray, n_jobs: int, max_iter: int) -> float:
    grid = GridSearchCV(
        AutoencoderTransformer(max_iter=max_iter, random_state=0),
        GRID,
        cv=3,
        n_jobs=n_jobs,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X)
    return time.perf_counter() - start


def time_runs(label, repeats, run, before=None):
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        times.append(run())
    return label, min(times), statistics.median(times)


def main() -> None:
    args = parse_args()
    if args.no_budget:
        skae._autoencoder.torch_thread_budget = contextlib.nullcontext
    X = load_digits().data / 16.0
    load_before = os.getloadavg()

    fresh_loky_workers()
    start = time.perf_counter()
    states = joblib.Parallel(n_jobs=2)(
        joblib.delayed(worker_state)(i) for i in range(2)
    )
    first_task = time.perf_counter() - start
    with joblib.parallel_backend("threading", n_jobs=2):
        thread_threads = joblib.Parallel()(
            joblib.delayed(torch.get_num_threads)() for _ in range(2)
        )

    rows = [
        time_runs(
            "n_jobs=1", args.repeats, lambda: search(X, 1, args.max_iter)
        ),
        time_runs(
            "loky n_jobs=2, fresh workers",
            args.repeats,
            lambda: search(X, 2, args.max_iter),
            before=fresh_loky_workers,
        ),
        time_runs(
            "loky n_jobs=2, warm workers",
            args.repeats,
            lambda: search(X, 2, args.max_iter),
            before=lambda: search(X, 2, 1),
        ),
    ]
    with joblib.parallel_backend("threading"):
        rows.append(
            time_runs(
                "threading n_jobs=2"
                + (" (no thread budget)" if args.no_budget else ""),
                args.repeats,
                lambda: search(X, 2, args.max_iter),
            )
        )
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
    print(
        f"GridSearchCV on digits {X.shape}, {len(GRID)} params, "
        f"4 candidates x 3 folds, max_iter={args.max_iter}, {args.repeats} repeats"
    )
    print(f"{'configuration':45s} {'min s':>7s} {'median s':>9s}")
    for label, best, median in rows:
        print(f"{label:45s} {best:7.2f} {median:9.2f}")


if __name__ == "__main__":
    main()
