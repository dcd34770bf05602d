# SPDX-License-Identifier: BSD-3-Clause
"""Torch side of ``fit``: train one network of one code size, as planned.

``fit_network`` runs the plan the estimator made: with no rows to judge by,
it trains the network on every row; otherwise it trains one network per fold
(a holdout is one fold), stops them together on their pooled held-out error,
chooses between the untrained start and the best epoch
(:func:`trained_beats_start`), and builds the model kept from every row: the
start on all rows, or a refit on all rows for the best epoch's number of
epochs. It knows nothing of sklearn; the estimator hands it callables that
build networks and compute losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from skae._data import Rows, take_rows
from skae._training import Run, TrainingConfig, TrainingResult, make_optimizer, train

# The trained network replaces the start only when its mean advantage on the
# held-out rows exceeds this many standard errors of the paired per-row
# differences, or the second number of them for an advantage of at least
# LARGE_ADVANTAGE of the start's error (docs/pca_start.rst).
NOISE_STANDARD_ERRORS = 3.0
LARGE_ADVANTAGE, LARGE_ADVANTAGE_STANDARD_ERRORS = 0.5, 2.0


@dataclass(frozen=True)
class Fold:
    """Row indices of one fold: the rows a network trains on and those judging it."""

    train_rows: torch.Tensor
    valid_rows: torch.Tensor


@dataclass
class FittedNetwork:
    """The model kept by :func:`fit_network`, and how it was chosen."""

    network: nn.Module
    # Training losses of the network kept (the selection's when it is the start).
    train_losses: list[float]
    # The selection's pooled held-out loss per epoch (reported units).
    valid_losses: list[float]
    # Held-out loss of the choice made (reported units), and in network units.
    kept_valid_loss: float | None
    kept_valid_error: float | None
    kept_start: bool
    # Whether the stopping rule (or a callback) ended training before max_iter.
    stopped_early: bool
    optimizer_state: dict


def trained_beats_start(
    start_errors: torch.Tensor, trained_errors: torch.Tensor
) -> bool:
    """Whether training lowered the held-out error by more than its noise.

    A paired comparison, row by row: the mean fall in error must exceed
    :data:`NOISE_STANDARD_ERRORS` standard errors of the per-row falls, so
    that an epoch which beats the start on a few rows by chance does not
    replace it. A fall of at least :data:`LARGE_ADVANTAGE` of the start's
    error needs :data:`LARGE_ADVANTAGE_STANDARD_ERRORS`: when training
    removes most of the error of a few badly reconstructed rows, those rows
    inflate the standard error as much as the mean.
    """
    start_errors = start_errors.double().cpu()
    falls = start_errors - trained_errors.double().cpu()
    mean = float(falls.mean())
    if falls.numel() < 2:
        return mean > 0
    standard_error = float(falls.std()) / falls.numel() ** 0.5
    large = mean >= LARGE_ADVANTAGE * float(start_errors.mean())
    needed = LARGE_ADVANTAGE_STANDARD_ERRORS if large else NOISE_STANDARD_ERRORS
    return mean > needed * standard_error


def fit_network(
    build: Callable[[torch.Tensor | None], nn.Module],
    X: Rows,
    folds: list[Fold] | None,
    *,
    batch_loss: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    config: TrainingConfig,
    refit_config: TrainingConfig,
    seed: int,
    start_competes: bool,
    optimizer_state: dict | None = None,
    threads: Callable[[nn.Module, TrainingConfig], object] | None = None,
) -> FittedNetwork:
    """Train a network on X (standardised, on its device) as the folds say.

    X is a tensor, or sparse rows standardised as each batch is made dense.

    ``build(rows)`` returns the untrained network for the training rows
    ``rows`` (``None``: every row), seeded alike every time, so a refit
    starts where the folds' networks started. ``threads(network, config)``
    returns the thread chooser of a training run.
    """
    if not folds:
        network = _seeded(build, None, seed)
        result = _train(
            [Run(network, X)], batch_loss, config, seed, threads, optimizer_state
        )
        return FittedNetwork(
            network,
            result.train_losses,
            [],
            None,
            None,
            False,
            result.stopped_early,
            result.optimizer_state,
        )
    runs = [
        Run(
            _seeded(build, fold.train_rows, seed),
            X,
            fold.train_rows.to(X.device),
            take_rows(X, fold.valid_rows),
        )
        for fold in folds
    ]
    selection = _train(runs, batch_loss, config, seed, threads)
    del runs
    keep_start = start_competes and (
        selection.best_epoch is None
        or not trained_beats_start(
            selection.start_row_errors, selection.best_row_errors
        )
    )
    network = _seeded(build, None, seed)
    if keep_start:
        train_losses = selection.train_losses
        # A fresh solver's state: the start has taken no step.
        optimizer_state = make_optimizer(network.parameters(), config).state_dict()
        kept_errors, kept_loss = selection.start_row_errors, selection.start_valid_loss
    else:
        # Every row teaches the model kept: the best epoch's length, from the
        # start on all rows, on the schedule the folds followed.
        refit = _train(
            [Run(network, X)],
            batch_loss,
            refit_config,
            seed,
            threads,
            optimizer_state,
            epochs=selection.best_epoch,
        )
        train_losses, optimizer_state = refit.train_losses, refit.optimizer_state
        kept_errors, kept_loss = selection.best_row_errors, selection.best_valid_loss
    kept_error = float(kept_errors.double().mean())
    return FittedNetwork(
        network,
        train_losses,
        selection.valid_losses,
        kept_loss,
        kept_error,
        keep_start,
        selection.stopped_early,
        optimizer_state,
    )


def _seeded(
    build: Callable[[torch.Tensor | None], nn.Module],
    rows: torch.Tensor | None,
    seed: int,
) -> nn.Module:
    torch.manual_seed(seed)
    return build(rows)


def _train(
    runs: list[Run],
    batch_loss: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    config: TrainingConfig,
    seed: int,
    threads: Callable[[nn.Module, TrainingConfig], object] | None,
    optimizer_state: dict | None = None,
    epochs: int | None = None,
) -> TrainingResult:
    generator = torch.Generator(runs[0].X.device).manual_seed(seed)
    return train(
        runs,
        batch_loss=batch_loss,
        config=config,
        generator=generator,
        epochs=epochs,
        optimizer_state=optimizer_state,
        threads=None if threads is None else threads(runs[0].network, config),
    )
