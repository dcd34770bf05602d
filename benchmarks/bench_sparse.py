# SPDX-License-Identifier: BSD-3-Clause
"""The autoencoder against TruncatedSVD on a sparse bag-of-words corpus.

No text corpus ships with the installed packages offline (scikit-learn's 20
newsgroups downloads), so the corpus is synthetic, and documented here:
``--n-docs`` documents over a vocabulary of ``--n-words`` words. Each
document mixes two of 30 topics; a topic draws words from a Zipf law (word
of rank r with probability proportional to 1 / r**1.1) over its own random
ordering of the vocabulary, so that a few words dominate each topic, most
words are rare, and documents share structure through their topics. Lengths
are Poisson with mean 100 words. The counts go through ``TfidfTransformer``
(l2-normalised rows), as a text pipeline would; 20% of the documents are
held out.

For each code size k, the script fits ``TruncatedSVD(k)`` and
``AutoencoderTransformer(k)`` on the training documents (sparse CSR, never
densified) and reports:

- the held-out reconstruction error, the mean squared error over every
  entry of the held-out documents (computed batch by batch);
- the fit time;
- the fit's peak resident memory beyond the memory before it (Linux's
  ``VmHWM``, reset through ``/proc/self/clear_refs``), next to the size the
  training documents would take dense.

Run from the repository root::

    python benchmarks/bench_sparse.py
    python benchmarks/bench_sparse.py --n-docs 20000 --n-words 50000 --k 16
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer

from skae import AutoencoderTransformer

MiB = 2**20
N_TOPICS = 30
ZIPF_EXPONENT = 1.1
MEAN_LENGTH = 100
BATCH_ROWS = 1000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=10_000)
    parser.add_argument("--n-words", type=int, default=30_000)
    parser.add_argument("--k", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def zipf_corpus(n_docs: int, n_words: int, seed: int) -> sp.csr_array:
    """Word counts of ``n_docs`` documents, each mixing two Zipf-law topics."""
    rng = np.random.RandomState(seed)
    ranks = np.arange(1, n_words + 1, dtype=np.float64)
    law = ranks**-ZIPF_EXPONENT
    law /= law.sum()
    orderings = [rng.permutation(n_words) for _ in range(N_TOPICS)]
    rows, columns = [], []
    for doc in range(n_docs):
        length = max(1, rng.poisson(MEAN_LENGTH))
        topics = rng.choice(N_TOPICS, size=2, replace=False)
        picks = rng.choice(2, size=length, p=[0.7, 0.3])
        words = rng.choice(n_words, size=length, p=law)
        columns.append(
            np.where(
                picks == 0, orderings[topics[0]][words], orderings[topics[1]][words]
            )
        )
        rows.append(np.full(length, doc))
    counts = sp.csr_array(
        (
            np.ones(sum(map(len, rows))),
            (np.concatenate(rows), np.concatenate(columns)),
        ),
        shape=(n_docs, n_words),
    )
    counts.sum_duplicates()
    return counts


def held_out_error(reconstruct: Callable[[Any], np.ndarray], X: Any) -> float:
    """Mean squared error over every entry of X, batch by batch."""
    total = 0.0
    for start in range(0, X.shape[0], BATCH_ROWS):
        rows = X[start : start + BATCH_ROWS]
        total += float(np.sum((reconstruct(rows) - rows.toarray()) ** 2))
    return total / (X.shape[0] * X.shape[1])


def reset_peak() -> int:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return status("VmRSS")


def status(field: str) -> int:
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(estimator: Any, X_train: Any, X_test: Any) -> tuple[float, float, float]:
    """Fit time, peak memory of the fit beyond what was resident, held-out error."""
    before = reset_peak()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train)
    seconds = time.perf_counter() - start
    peak = status("VmHWM") - before
    error = held_out_error(
        lambda rows: estimator.inverse_transform(estimator.transform(rows)), X_test
    )
    return seconds, peak / MiB, error


def main() -> None:
    args = parse_args()
    counts = zipf_corpus(args.n_docs, args.n_words, args.seed)
    X = TfidfTransformer().fit_transform(counts).astype(np.float32)
    n_train = int(0.8 * X.shape[0])
    X_train, X_test = X[:n_train], X[n_train:]
    dense = n_train * X.shape[1] * 4 / MiB
    print(
        f"{X.shape[0]} documents x {X.shape[1]} words, density "
        f"{X.nnz / (X.shape[0] * X.shape[1]):.4%}; {n_train} train, "
        f"{X.shape[0] - n_train} held out; dense training data: {dense:.0f} MiB "
        "(float32)"
    )
    baseline = held_out_error(lambda rows: np.zeros(rows.shape), X_test)
    print(f"held-out MSE of an all-zero reconstruction: {baseline:.4e}")
    # Warm-up, so that first-call allocations of torch do not count.
    AutoencoderTransformer(n_components=2, max_iter=1).fit(X_train[:200])
    print(f"{'model':<34} {'k':>4} {'held-out MSE':>13} {'fit (s)':>8} {'peak MiB':>9}")
    for k in args.k:
        models = {
            "TruncatedSVD": TruncatedSVD(k, random_state=args.seed),
            f"AutoencoderTransformer, {args.max_iter} epochs": AutoencoderTransformer(
                k, max_iter=args.max_iter, random_state=args.seed
            ),
        }
        for name, model in models.items():
            seconds, peak, error = measure(model, X_train, X_test)
            print(f"{name:<34} {k:>4} {error:>13.4e} {seconds:>8.1f} {peak:>9.0f}")


if __name__ == "__main__":
    main()
