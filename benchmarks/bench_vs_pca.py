"""Default AutoencoderTransformer against PCA, data set by data set, k by k.

Run from the repository root::

    python benchmarks/bench_vs_pca.py              # the whole panel, MNIST included
    python benchmarks/bench_vs_pca.py --no-mnist   # without the 60,000-row MNIST fit
    python benchmarks/bench_vs_pca.py --small      # the small tables only
    python benchmarks/bench_vs_pca.py --seeds 0 1  # two splits of every data set

Each data set is split 75/25 (seed 0); tabular sets are standardised with the
training part's statistics, images are scaled to [0, 1]. For every code size k,
PCA and ``AutoencoderTransformer(n_components=k, random_state=0)`` (all other
settings at their defaults) are fitted on the training part, and the table
gives the test reconstruction MSE of each, their ratio (below 1: the
autoencoder wins), PCA's fit milliseconds, the autoencoder's fit seconds and
the epochs it trained.

The panel: scikit-learn's digits (k = 8, 32, 48), breast cancer (2, 5, 10, 20)
and wine (2, 4, 8); Fashion-MNIST, the first 6,000 rows of its test file (16,
64, 128), and MNIST's 60,000 training images against its 10,000 test images
(32). The image files are read from ``../shared/data`` beside the repository
and skipped where absent.

The small tables: 20-, 40- and 80-row subsets of wine, breast cancer and
diabetes, linnerud (20 rows), and, where statsmodels is installed (the
``bench`` extra), every numeric table of 10 to 100 rows with at least 4
columns that it ships; each standardised inside 3-fold cross-validation,
k = 2, half the columns and all but one (at most the training rows less one).

Noise: a ratio is compared with the noise of its own comparison, two standard
errors of the mean per-row difference of squared errors (autoencoder minus
PCA) on the test rows, over PCA's test MSE; a case is worse than PCA beyond
noise when its ratio exceeds 1 by more than that.

``--set name=value`` overrides an estimator parameter (values are Python
literals), to measure alternatives.
``--repeat-train 3`` fits both methods on every training row three times and
tests on the test rows once, as oversampling before the fit does: rows held
out inside the fit then have copies among the rows it trains on.
``--variance 0.9`` measures instead the code size each method chooses for
that share of variance, on the digits and Fashion-MNIST.
``--tiny`` measures instead tables of 3, 6 and 9 rows: random rows of wine,
breast cancer and diabetes (four draws each), standardised, k = 2, tested on
all the other rows of their data set.
"""

from __future__ import annotations

import argparse
import ast
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_linnerud,
    load_wine,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, train_test_split
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Every small data set is split 75/25, with seed 0.
TEST_SIZE = 0.25
# 8-bit images scale to [0, 1]; the first rows of Fashion-MNIST's test set make
# an image set between the digits and MNIST in size.
PIXEL_MAX = 255
N_FASHION = 6000
N_MNIST_TRAIN, N_MNIST_TEST = 60000, 10000


SMALL_SIZES = (20, 40, 80)
SMALL_FOLDS = 3
# statsmodels' tables of 10 to 100 rows with at least this many columns.
MIN_COLUMNS = 4


def small_tables() -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, X) for every small table: raw values, not yet standardised."""
    linnerud = load_linnerud()
    yield "linnerud", np.hstack([linnerud.data, linnerud.target])
    for name, loader in (
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
        ("diabetes", load_diabetes),
    ):
        X = loader().data
        rows = np.random.RandomState(0).permutation(len(X))
        for n in SMALL_SIZES:
            yield f"{name}_{n}", X[rows[:n]]
    yield from statsmodels_tables(10, 100)


def statsmodels_tables(
    min_rows: int, max_rows: int
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, X) for statsmodels' numeric tables of that many rows.

    Complete rows only, constant columns dropped, at least :data:`MIN_COLUMNS`
    columns left; nothing where statsmodels (the ``bench`` extra) is absent.
    """
    try:
        import statsmodels.datasets as tables
    except ImportError:
        return
    for name in sorted(dir(tables)):
        loader = getattr(tables, name)
        if name.startswith("_") or not hasattr(loader, "load_pandas"):
            continue
        X = loader.load_pandas().data.select_dtypes("number").dropna().to_numpy(float)
        if not min_rows <= len(X) <= max_rows:
            continue
        X = X[:, X.std(axis=0) > 0]
        if X.shape[1] >= MIN_COLUMNS:
            yield f"sm_{name}", X


def small_panel(seed: int) -> Iterator[tuple[str, list, list[int]]]:
    """Yield (name, [(X_train, X_test), ...] over 3 folds, ks) per small table."""
    for name, X in small_tables():
        yield name, *standardised_folds(X, seed)


def standardised_folds(X: np.ndarray, seed: int) -> tuple[list, list[int]]:
    """Return X's 3 folds, each standardised by its training part, and the ks.

    k = 2, half the columns and all but one, at most the training rows less one.
    """
    folds = []
    for train, test in KFold(SMALL_FOLDS, shuffle=True, random_state=seed).split(X):
        scaler = StandardScaler().fit(X[train])
        folds.append((scaler.transform(X[train]), scaler.transform(X[test])))
    largest = min(X.shape[1], min(len(train) for train, _ in folds)) - 1
    return folds, sorted({2, min(X.shape[1] // 2, largest), largest})


def panel(
    mnist: bool, seed: int = 0
) -> Iterator[tuple[str, np.ndarray, np.ndarray, list[int]]]:
    """Yield (name, X_train, X_test, ks) for every data set of the panel."""
    X = load_digits().data / 16.0
    yield (
        "digits",
        *train_test_split(X, test_size=TEST_SIZE, random_state=seed),
        [8, 32, 48],
    )
    for name, loader, ks in (
        ("breast_cancer", load_breast_cancer, [2, 5, 10, 20]),
        ("wine", load_wine, [2, 4, 8]),
    ):
        X_train, X_test = train_test_split(
            loader().data, test_size=TEST_SIZE, random_state=seed
        )
        scaler = StandardScaler().fit(X_train)
        yield name, scaler.transform(X_train), scaler.transform(X_test), ks
    fashion = DATA / "fashion_mnist.npz"
    if fashion.exists():
        with np.load(fashion) as data:
            X = data["x_test"][:N_FASHION].reshape(N_FASHION, -1)
            X = X.astype(np.float32) / PIXEL_MAX
        yield (
            "fashion_mnist_6000",
            *train_test_split(X, test_size=TEST_SIZE, random_state=seed),
            [16, 64, 128],
        )
    digits_file = DATA / "mnist.npz"
    if mnist and digits_file.exists():
        with np.load(digits_file) as data:
            X_train = data["x_train"].reshape(N_MNIST_TRAIN, -1) / np.float32(PIXEL_MAX)
            X_test = data["x_test"].reshape(N_MNIST_TEST, -1) / np.float32(PIXEL_MAX)
        yield "mnist_60000", X_train, X_test, [32]


def mse(model, X: np.ndarray) -> float:
    return float(np.mean(row_errors(model, X)))


def row_errors(model, X: np.ndarray) -> np.ndarray:
    """Each row's squared reconstruction error, summed over the features."""
    X = np.asarray(X, dtype=np.float64)
    return np.sum((model.inverse_transform(model.transform(X)) - X) ** 2, axis=1)


def fit_default(
    n_components: float, overrides: dict, X_train: np.ndarray
) -> tuple[AutoencoderTransformer, float]:
    """Fit the autoencoder with defaults (but ``overrides``); return it and seconds."""
    model = AutoencoderTransformer(n_components=n_components, random_state=0)
    model.set_params(**overrides)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)
    return model, time.perf_counter() - start


TINY_SIZES, TINY_DRAWS = (3, 6, 9), 4


def tiny_tables(overrides: dict) -> None:
    """Print AE / PCA test MSE on tables of a few rows, tested on all the others."""
    print("| data | rows | AE / PCA test MSE, one per draw |")
    print("|---|---:|---|")
    for name, loader in (
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
        ("diabetes", load_diabetes),
    ):
        X = loader().data
        for n in TINY_SIZES:
            ratios = []
            for draw in range(TINY_DRAWS):
                rows = np.random.RandomState(draw).permutation(len(X))
                scaler = StandardScaler().fit(X[rows[:n]])
                X_train, X_test = (
                    scaler.transform(X[part]) for part in np.split(rows, [n])
                )
                model, _ = fit_default(2, overrides, X_train)
                pca = PCA(n_components=2).fit(X_train)
                ratios.append(mse(model, X_test) / mse(pca, X_test))
            print(f"| {name} | {n} | {' / '.join(f'{r:.3f}' for r in ratios)} |")


def code_sizes(fraction: float, overrides: dict) -> None:
    """Print the code size PCA and the autoencoder choose for ``fraction``."""
    print(f"n_components={fraction}: code size and test R² of each method")
    print()
    print("| data | PCA k | PCA test R² | AE k | AE test R² | AE fit s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, X_train, X_test, _ in panel(mnist=False):
        if name not in ("digits", "fashion_mnist_6000"):
            continue
        # Per row, summed over the features, as mse() measures.
        total = float(np.sum((X_test - X_train.mean(axis=0)) ** 2) / len(X_test))
        pca = PCA(n_components=fraction).fit(X_train)
        model, seconds = fit_default(fraction, overrides, X_train)
        print(
            f"| {name} | {pca.n_components_} | {1 - mse(pca, X_test) / total:.3f} "
            f"| {model.n_components_} | {1 - mse(model, X_test) / total:.3f} "
            f"| {seconds:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-mnist", action="store_true", help="skip MNIST 60,000")
    parser.add_argument("--small", action="store_true", help="the small tables only")
    parser.add_argument(
        "--no-small", action="store_true", help="without the small tables"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="split seeds (default 0)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an AutoencoderTransformer parameter",
    )
    parser.add_argument(
        "--repeat-train",
        type=int,
        default=1,
        metavar="N",
        help="fit both methods on every training row repeated N times, the test "
        "rows once (as oversampling before the fit makes them)",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="instead: tables of 3, 6 and 9 rows"
    )
    parser.add_argument(
        "--variance",
        type=float,
        metavar="FRACTION",
        help="instead of the panel: the code size each method needs for this "
        "share of variance, on digits and Fashion-MNIST",
    )
    args = parser.parse_args()
    overrides = {
        name: ast.literal_eval(value)
        for name, value in (item.split("=", 1) for item in args.set)
    }
    if args.variance is not None:
        code_sizes(args.variance, overrides)
        return
    if args.tiny:
        tiny_tables(overrides)
        return
    print(f"AutoencoderTransformer(n_components=k, random_state=0, **{overrides})")
    if args.repeat_train > 1:
        print(f"every training row {args.repeat_train} times")
    print()
    print(
        "| data | seed | n_train x n_features | k | PCA test MSE | AE test MSE "
        "| AE / PCA | noise | PCA fit ms | AE fit s | epochs |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases: list[tuple[str, float, float]] = []
    for seed in args.seeds:
        for name, folds, ks in small_panel(seed) if not args.no_small else ():
            for k in ks:
                cases.append(
                    compare(
                        f"{name} (3-fold)",
                        seed,
                        repeated(folds, args.repeat_train),
                        k,
                        overrides,
                        small=True,
                    )
                )
        if args.small:
            continue
        for name, X_train, X_test, ks in panel(not args.no_mnist, seed):
            for k in ks:
                splits = repeated([(X_train, X_test)], args.repeat_train)
                cases.append(compare(name, seed, splits, k, overrides))
    ratios = np.array([ratio for _, ratio, _ in cases])
    small = np.array([kind == "small" for kind, _, _ in cases])
    # float32 rounds a kept PCA start to within 1e-4 of PCA.
    beyond = [ratio for _, ratio, noise in cases if ratio - 1 > max(noise, 1e-4)]
    print()
    print(f"geometric mean AE / PCA: {np.exp(np.mean(np.log(ratios))):.3f}")
    print(f"worst AE / PCA: {ratios.max():.3f}")
    if small.any():
        print(
            f"small tables: geometric mean {np.exp(np.mean(np.log(ratios[small]))):.3f}"
            f", worst {ratios[small].max():.3f}, {small.sum()} cases"
        )
    if (~small).any():
        print(
            f"panel: geometric mean {np.exp(np.mean(np.log(ratios[~small]))):.3f}"
            f", worst {ratios[~small].max():.3f}, {(~small).sum()} cases"
        )
    print(f"cases above 1 by more than their noise: {len(beyond)} of {len(cases)}")


def repeated(splits: list, n: int) -> list:
    """Each split with its training rows repeated ``n`` times in a row."""
    return [(np.repeat(X_train, n, axis=0), X_test) for X_train, X_test in splits]


def compare(
    name: str,
    seed: int,
    splits: list,
    k: int,
    overrides: dict,
    small: bool = False,
    errors: bool = False,
) -> tuple:
    """Fit both methods on every split; print a row; return (kind, ratio, noise).

    With ``errors``, also both test MSEs: (kind, ratio, noise, PCA's, AE's).
    """
    pca_rows, ae_rows, pca_ms, ae_seconds, epochs = [], [], 0.0, 0.0, []
    for X_train, X_test in splits:
        start = time.perf_counter()
        pca = PCA(n_components=k).fit(X_train)
        pca_ms += 1000 * (time.perf_counter() - start)
        model, seconds = fit_default(k, overrides, X_train)
        ae_seconds += seconds
        epochs.append(model.n_iter_)
        pca_rows.append(row_errors(pca, X_test) / X_test.shape[1])
        ae_rows.append(row_errors(model, X_test) / X_test.shape[1])
    pca_rows, ae_rows = np.concatenate(pca_rows), np.concatenate(ae_rows)
    pca_error, ae_error = pca_rows.mean(), ae_rows.mean()
    difference = ae_rows - pca_rows
    noise = 2 * difference.std(ddof=1) / np.sqrt(len(difference)) / pca_error
    ratio = ae_error / pca_error
    X_train = splits[0][0]
    print(
        f"| {name} | {seed} | {X_train.shape[0]} x {X_train.shape[1]} | {k} "
        f"| {pca_error:.5f} | {ae_error:.5f} | {ratio:.3f} | {noise:.3f} "
        f"| {pca_ms:.0f} | {ae_seconds:.1f} | {'/'.join(map(str, epochs))} |",
        flush=True,
    )
    kind = "small" if small else "panel"
    if errors:
        return kind, float(ratio), float(noise), float(pca_error), float(ae_error)
    return kind, float(ratio), float(noise)


if __name__ == "__main__":
    main()
