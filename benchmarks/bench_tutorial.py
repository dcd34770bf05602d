"""The Keras tutorial autoencoders through skae, against skae's defaults and PCA.

Run from the repository root::

    python benchmarks/bench_tutorial.py               # the tutorial's 100 epochs
    python benchmarks/bench_tutorial.py --epochs 20   # fewer epochs
    python benchmarks/bench_tutorial.py --quick       # 1 epoch, 10,000 rows

MNIST's 60,000 training images are fitted and its 10,000 test images measured
(pixels scaled to [0, 1]), read from ``../shared/data/mnist.npz`` beside the
repository; the script exits with a message where it is absent. Four models
with 32-number codes, fitted one after the other in one run:

- tutorial: 784 -> Dense(64, relu) -> Dense(32, relu) -> Dense(64, relu) ->
  Dense(784, sigmoid), Adam at 1e-3, binary cross-entropy, batches of 256,
  ``--epochs`` epochs on all training rows (no early stopping);
- tutorial + dropout: the same with dropout 0.5 after the hidden layers;
- skae defaults: ``AutoencoderTransformer(n_components=32, random_state=0)``,
  ``max_iter='auto'`` (about 3500 optimiser steps, with early stopping);
- PCA with 32 components.

The table gives each model's epochs, test reconstruction MSE (squared pixel
units), test binary cross-entropy (the tutorial's loss, from reconstructions
clipped to [1e-7, 1 - 1e-7] as Keras does), fit seconds, and the test accuracy
of a logistic regression trained on the training images' codes.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
# MNIST's 60,000 training and 10,000 test images, pixels 0..255; --quick trains
# on the first 10,000 training images.
N_TRAIN, N_TEST, N_TRAIN_QUICK, PIXEL_MAX = 60000, 10000, 10000, 255
# The code size of every model: the tutorial's.
K = 32


def tutorial_models(epochs: int, default_epochs: int | str) -> dict[str, object]:
    """The four models of the comparison, unfitted."""
    tutorial = {
        "n_components": K,
        "hidden_layer_sizes": (64,),
        "code_activation": "relu",
        "loss": "binary_crossentropy",
        "batch_size": 256,
        "learning_rate": "constant",
        "learning_rate_init": 1e-3,
        "early_stopping": False,
        "max_iter": epochs,
        "random_state": 0,
    }
    return {
        "tutorial": AutoencoderTransformer(**tutorial),
        "tutorial + dropout": AutoencoderTransformer(**tutorial, dropout=0.5),
        "skae defaults": AutoencoderTransformer(
            n_components=K, max_iter=default_epochs, random_state=0
        ),
        "PCA": PCA(n_components=K, random_state=0),
    }


def cross_entropy(X: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(X * np.log(p) + (1 - X) * np.log1p(-p)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=100, help="tutorial models' epochs (100)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 epoch for every network, on the first 10,000 training rows",
    )
    args = parser.parse_args()
    if not MNIST.exists():
        raise SystemExit(f"{MNIST.name} not found beside the repository; nothing to do")
    n_train = N_TRAIN_QUICK if args.quick else N_TRAIN
    with np.load(MNIST) as data:
        X_train = data["x_train"][:n_train].reshape(n_train, -1) / np.float32(PIXEL_MAX)
        X_test = data["x_test"].reshape(N_TEST, -1) / np.float32(PIXEL_MAX)
        y_train, y_test = data["y_train"][:n_train], data["y_test"]
    epochs = 1 if args.quick else args.epochs
    models = tutorial_models(epochs, 1 if args.quick else "auto")
    print(
        f"MNIST: {n_train} training, {N_TEST} test images; torch threads: "
        f"{torch.get_num_threads()}; tutorial epochs: {epochs}"
    )
    print()
    print("| model | epochs | test MSE | test BCE | fit s | logistic accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train)
        seconds = time.perf_counter() - start
        codes = model.transform(X_test)
        reconstructions = model.inverse_transform(codes)
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        classifier.fit(model.transform(X_train), y_train)
        print(
            f"| {label} | {getattr(model, 'n_iter_', '-')} "
            f"| {np.mean((reconstructions - X_test) ** 2):.5f} "
            f"| {cross_entropy(X_test, reconstructions):.4f} | {seconds:.1f} "
            f"| {classifier.score(codes, y_test):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
