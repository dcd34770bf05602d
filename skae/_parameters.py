# SPDX-License-Identifier: BSD-3-Clause
"""The scikit-learn face: the parameters every variant shares.

Their constraints (:data:`SHARED_CONSTRAINTS`, which each variant's
``_parameter_constraints`` builds on), the parameters that fix a network's
shape, and what the ``'auto'`` values of ``max_iter``, ``batch_size``,
``early_stopping`` and ``tol`` plan.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from skae._data import PRECISIONS
from skae._networks import ACTIVATIONS, LOSSES, NOISES
from skae._solvers import SOLVERS

# Optimiser steps that max_iter='auto' plans for: enough to beat PCA clearly on
# small and large data sets alike (see benchmarks/bench_training.py) ...
AUTO_STEPS = 3500
# ... within these epochs: small data sets get more passes, large ones end in
# bounded time.
AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS = 10, 200
# batch_size='auto': rows per training step, at most (fewer rows train in one).
AUTO_BATCH_SIZE = 256
# early_stopping='auto' holds out validation_fraction of the rows once they
# number this many; below, cross-validation over CV_FOLDS folds judges
# (docs/pca_start.rst) ...
MIN_HOLDOUT_ROWS = 100
CV_FOLDS = 5
# ... (one fold per row below CV_FOLDS rows) down to this many rows, where
# every fold still trains on two (batch_norm needs them); one or two rows
# train without held-out rows.
MIN_CV_ROWS = 3
# tol='auto': an epoch improves on the best when it lowers the monitored loss
# by more than this share of it, whatever the units of the data.
AUTO_RELATIVE_TOL = 1e-4
# Parameters that fix the network's shape; warm_start cannot change them, and
# a fitted model records their values (its architecture).
ARCHITECTURE_PARAMS = (
    "n_components",
    "init",
    "hidden_layer_sizes",
    "activation",
    "code_activation",
    "loss",
    "dropout",
    "batch_norm",
    "image_shape",
    "conv_channels",
    "network",
)

# Bounds of numeric parameters, so that each converts to a float or an int:
# a loss weight or noise level (in units of the data's scale) beyond
# MAX_WEIGHT drowns the reconstruction, and a rate or tol beyond float64 is no
# number at all.
MAX_WEIGHT = 1e6
MAX_COUNT = 2**31 - 1
MAX_FLOAT = float(np.finfo(np.float64).max)
# Constraints of the parameters every variant has.
SHARED_CONSTRAINTS: dict[str, list[Any]] = {
    "hidden_layer_sizes": ["array-like"],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "loss": [StrOptions(set(LOSSES))],
    "solver": [StrOptions(set(SOLVERS))],
    "alpha": [Interval(Real, 0, MAX_FLOAT, closed="both")],
    "batch_size": [
        StrOptions({"auto"}),
        Interval(Integral, 1, MAX_COUNT, closed="both"),
    ],
    "learning_rate": [StrOptions({"cosine", "constant"})],
    "learning_rate_init": [Interval(Real, 0, MAX_FLOAT, closed="right")],
    "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, MAX_COUNT, closed="both")],
    "tol": [StrOptions({"auto"}), Interval(Real, 0, MAX_FLOAT, closed="both")],
    "early_stopping": [StrOptions({"auto"}), "boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, MAX_COUNT, closed="both")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "batch_norm": ["boolean"],
    "noise": [StrOptions(set(NOISES)), None],
    "noise_level": [Interval(Real, 0, MAX_WEIGHT, closed="both")],
    "image_shape": ["array-like", None],
    "conv_channels": ["array-like"],
    "network": [callable, None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "device": [str, torch.device],
    "precision": [StrOptions(set(PRECISIONS))],
}
