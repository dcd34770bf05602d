"""Default AutoencoderTransformer against PCA, data set by data set, k by k.

Run from the repository root::

    python benchmarks/bench_vs_pca.py              # the whole panel, MNIST included
    python benchmarks/bench_vs_pca.py --no-mnist   # without the 60,000-row MNIST fit

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
and skipped where absent. ``--set name=value`` overrides an estimator
parameter (values are Python literals), to measure alternatives.
``--variance 0.9`` measures instead the code size each method chooses for
that share of variance, on the digits and Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import ast
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
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


def panel(mnist: bool) -> Iterator[tuple[str, np.ndarray, np.ndarray, list[int]]]:
    """Yield (name, X_train, X_test, ks) for every data set of the panel."""
    X = load_digits().data / 16.0
    yield (
        "digits",
        *train_test_split(X, test_size=TEST_SIZE, random_state=0),
        [8, 32, 48],
    )
    for name, loader, ks in (
        ("breast_cancer", load_breast_cancer, [2, 5, 10, 20]),
        ("wine", load_wine, [2, 4, 8]),
    ):
        X_train, X_test = train_test_split(
            loader().data, test_size=TEST_SIZE, random_state=0
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
            *train_test_split(X, test_size=TEST_SIZE, random_state=0),
            [16, 64, 128],
        )
    digits_file = DATA / "mnist.npz"
    if mnist and digits_file.exists():
        with np.load(digits_file) as data:
            X_train = data["x_train"].reshape(N_MNIST_TRAIN, -1) / np.float32(PIXEL_MAX)
            X_test = data["x_test"].reshape(N_MNIST_TEST, -1) / np.float32(PIXEL_MAX)
        yield "mnist_60000", X_train, X_test, [32]


def mse(model, X: np.ndarray) -> float:
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


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


def code_sizes(fraction: float, overrides: dict) -> None:
    """Print the code size PCA and the autoencoder choose for ``fraction``."""
    print(f"n_components={fraction}: code size and test R² of each method")
    print()
    print("| data | PCA k | PCA test R² | AE k | AE test R² | AE fit s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, X_train, X_test, _ in panel(mnist=False):
        if name not in ("digits", "fashion_mnist_6000"):
            continue
        total = float(np.mean((X_test - X_train.mean(axis=0)) ** 2))
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
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an AutoencoderTransformer parameter",
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
    print(f"AutoencoderTransformer(n_components=k, random_state=0, **{overrides})")
    print()
    print(
        "| data | n_train x n_features | k | PCA test MSE | AE test MSE "
        "| AE / PCA | PCA fit ms | AE fit s | epochs |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios: list[float] = []
    small_worst = large_worst = 0.0
    for name, X_train, X_test, ks in panel(mnist=not args.no_mnist):
        for k in ks:
            start = time.perf_counter()
            pca = PCA(n_components=k).fit(X_train)
            pca_ms = 1000 * (time.perf_counter() - start)
            pca_error = mse(pca, X_test)
            model, seconds = fit_default(k, overrides, X_train)
            ratio = mse(model, X_test) / pca_error
            ratios.append(ratio)
            if len(X_train) + len(X_test) < 500:
                small_worst = max(small_worst, ratio)
            else:
                large_worst = max(large_worst, ratio)
            print(
                f"| {name} | {X_train.shape[0]} x {X_train.shape[1]} | {k} "
                f"| {pca_error:.5f} | {mse(model, X_test):.5f} | {ratio:.3f} "
                f"| {pca_ms:.0f} | {seconds:.1f} | {model.n_iter_} |",
                flush=True,
            )
    print()
    print(f"geometric mean AE / PCA: {np.exp(np.mean(np.log(ratios))):.3f}")
    print(f"worst AE / PCA, sets of 500 rows or more: {large_worst:.3f}")
    print(f"worst AE / PCA, sets under 500 rows: {small_worst:.3f}")


if __name__ == "__main__":
    main()
