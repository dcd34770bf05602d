"""The numbers of docs/parameters.rst: one setting changed at a time, on the digits.

Run from the repository root::

    python benchmarks/bench_parameters.py

scikit-learn's digits (values 0 to 16) are split 70/30 with seed 0: 1,257
training and 540 test images. Every row fits
``AutoencoderTransformer(n_components=8, random_state=0)`` with one setting
changed and prints the mean squared reconstruction error on the test images,
the epochs trained (``n_iter_``) and whether ``max_iter`` ended training (a
``ConvergenceWarning``). PCA with 8 and 16 components gives the baselines.
Single runs: differences of a few hundredths are noise.

It also prints the epochs ``max_iter='auto'`` plans for the digits and for
MNIST's 60,000 training rows, at the default batch size and with the default
early stopping holding out 10% of the rows.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

# Rows of MNIST's training set, whose epoch plan the page quotes.
MNIST_ROWS = 60_000
# Longer than any plan (at most 200 epochs): the fit trains every planned epoch.
NEVER_STOP = 10**6

SECTIONS = {
    "hidden_layer_sizes": [
        {"hidden_layer_sizes": ()},
        {"hidden_layer_sizes": (64,)},
        {},
        {"hidden_layer_sizes": (512, 256)},
        {"hidden_layer_sizes": (256, 128, 64)},
    ],
    "learning rate and solver": [
        {"learning_rate_init": 1e-3},
        {},
        {"learning_rate_init": 1e-2},
        {"learning_rate_init": 3e-2},
        {"learning_rate": "constant"},
        {"solver": "sgd", "learning_rate_init": 1e-2},
    ],
    "batch_size": [{"batch_size": 32}, {"batch_size": 64}, {}],
    "early stopping": [{"early_stopping": False}, {}],
    "regularisation": [
        {},
        {"alpha": 1e-4},
        {"dropout": 0.1},
        {"noise": "gaussian", "noise_level": 0.2},
    ],
}


def planned_epochs(n_samples: int) -> int:
    """Epochs ``max_iter='auto'`` plans for ``n_samples`` rows, by fitting them.

    A one-unit linear model on random rows, never stopped early, trains the
    whole plan: its ``n_iter_`` is the plan, as skae computes it.
    """
    X = np.random.default_rng(0).normal(size=(n_samples, 2))
    model = AutoencoderTransformer(
        n_components=1,
        hidden_layer_sizes=(),
        n_iter_no_change=NEVER_STOP,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return model.n_iter_


def main() -> None:
    X = load_digits().data
    X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
    print(f"digits: {len(X_train)} training, {len(X_test)} test images")
    for k in (8, 16):
        pca = PCA(n_components=k).fit(X_train)
        error = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
        print(f"PCA, n_components={k}: test MSE {error:.2f}")
    for n_samples in (len(X_train), MNIST_ROWS):
        epochs = planned_epochs(n_samples)
        print(f"max_iter='auto' on {n_samples} rows: {epochs} epochs")
    for section, rows in SECTIONS.items():
        print(f"\n{section}")
        for setting in rows:
            model = AutoencoderTransformer(n_components=8, random_state=0, **setting)
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                model.fit(X_train)
            seconds = time.perf_counter() - start
            capped = any(issubclass(w.category, ConvergenceWarning) for w in caught)
            label = ", ".join(f"{k}={v!r}" for k, v in setting.items()) or "defaults"
            print(
                f"  {label:<42} test MSE {-model.score(X_test):5.2f}  "
                f"epochs {model.n_iter_:3d}{'  (max_iter reached)' if capped else ''}"
                f"  {seconds:4.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
