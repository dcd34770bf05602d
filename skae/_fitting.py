# SPDX-License-Identifier: BSD-3-Clause
"""Torch side of ``fit``: the plan's execution, step by step.

The estimator decides everything from X and its parameters first
(:class:`FitPlan`); :func:`fit_planned` then runs it:

1. standardise X into the rows networks train on;
2. for each code size tried (one, or a search for a fraction of variance),
   :func:`fit_code_size` chooses the precision, and :func:`fit_network`
   trains networks built by :func:`build_start` (the variant's network,
   placed at PCA's solution of the rows it trains on): with no rows to
   judge by, on every row; otherwise one per fold (a holdout is one fold),
   stopped together on their pooled held-out error, then the untrained start
   or the best epoch is kept (:func:`trained_beats_start`), as a model that
   has learnt from every row: the start on all rows; the held-out network
   going on over every row (:func:`_continue_on_every_row`); or, under
   cross-validation, a refit on all rows for the best epoch's number of
   epochs;
3. measure what the kept codes keep and order their columns
   (:func:`summarise_codes`), then bound the residuals' inputs to the range
   the training rows give them (:func:`~skae._networks.fit_input_ranges`).

It knows nothing of sklearn; the estimator hands it the callable that
builds its variant's network.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from skae._data import BFLOAT16_SPEEDUP, Rows, mean_square, take_rows
from skae._networks import (
    AutoencoderNet,
    LossTerms,
    fit_input_ranges,
    linear_paths,
    start_from_pca,
)
from skae._ordering import code_importances, importance_rows, order_code_columns
from skae._pca import pca_components_for, principal_axes, smallest_sufficient_code
from skae._standardization import Standardization
from skae._threads import (
    choose_threads,
    is_small_step,
    own_global_rng,
    torch_thread_budget,
)
from skae._training import (
    Run,
    TrainingConfig,
    TrainingResult,
    make_optimizer,
    reconstruction_error,
    train,
)

# The trained network replaces the start only when its mean advantage on the
# held-out rows exceeds this many standard errors of the paired per-row
# differences, or the second number of them for an advantage of at least
# LARGE_ADVANTAGE of the start's error (docs/pca_start.rst).
NOISE_STANDARD_ERRORS = 3.0
LARGE_ADVANTAGE, LARGE_ADVANTAGE_STANDARD_ERRORS = 0.5, 2.0
# Fewer held-out rows than this never replace the start: their standard error
# says too little (a table of fewer rows keeps PCA; docs/pca_start.rst).
MIN_JUDGED_ROWS = 10
# A held-out network that wins goes on over every row at this share of the
# learning rate (docs/pca_start.rst).
CONTINUATION_RATE = 0.1


@dataclass(frozen=True)
class Fold:
    """Row indices of one fold: the rows a network trains on and those judging it."""

    train_rows: torch.Tensor
    valid_rows: torch.Tensor


@dataclass(frozen=True)
class FitPlan:
    """Everything ``fit`` decides before training, from X and the parameters."""

    # Validated X (dense, or canonical CSR) in input units, and its map to
    # the network's units.
    X: Any
    standardization: Standardization
    seed: int
    device: torch.device
    # The folds that judge training (a holdout is one); None: no rows held out.
    folds: list[Fold] | None
    config: TrainingConfig
    # Training on every row after the folds (a refit, or the held-out network
    # going on): the folds' settings, with batches of all rows.
    refit_config: TrainingConfig
    # build_network(n_components): the variant's untrained network.
    build_network: Callable[[int], AutoencoderNet]
    # A code size, or the fraction of variance the smallest code must keep.
    n_components: int | float
    loss_terms: LossTerms
    starts_from_pca: bool
    # Whether the untrained start competes with the trained network.
    start_competes: bool
    # precision='auto': steps too small to gain from bfloat16 train in float32.
    bfloat16_for_large_steps_only: bool
    # A fitted network to train on from (warm_start, partial_fit), and the
    # solver state to resume (partial_fit).
    previous_network: AutoencoderNet | None
    optimizer_state: dict | None
    # partial_fit: one epoch, no summary of the codes.
    incremental: bool
    n_iter_before: int

    @property
    def continuing(self) -> bool:
        """Whether training goes on from a fitted network."""
        return self.previous_network is not None


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


class CodeSummary(NamedTuple):
    """What a fitted network's codes keep: R², and each column's share."""

    r2: float
    importances: np.ndarray


class FitOutcome(NamedTuple):
    """What :func:`fit_planned` returns: the model kept and how it was fitted."""

    n_components: int
    network: AutoencoderNet
    fitted: FittedNetwork
    # None in partial_fit, which measures nothing.
    summary: CodeSummary | None


def fit_planned(plan: FitPlan) -> FitOutcome:
    """Train as planned (one network per code size tried); return the kept one on CPU.

    Then, except in ``partial_fit``, measure what its codes keep and put
    their columns in order of importance.
    """
    device = plan.device
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with (
        own_global_rng(cuda_devices),
        torch_thread_budget() as max_threads,
    ):
        X = plan.standardization.network_rows(plan.X, device)
        fit_size = partial(fit_code_size, plan, X, max_threads)
        judged = (
            X
            if plan.folds is None
            else take_rows(X, torch.cat([fold.valid_rows for fold in plan.folds]))
        )
        r2_of = partial(held_out_r2, X=X, total=mean_square(judged))
        if isinstance(plan.n_components, int):
            n_components, fitted = plan.n_components, fit_size(plan.n_components)
        else:
            n_components, fitted = smallest_sufficient_code(
                partial(_fit_and_score, fit_size, r2_of),
                pca_components_for(plan.X, plan.n_components),
                plan.n_components,
            )
        summary = None
        if not plan.incremental:
            # One epoch of partial_fit measures nothing: that would cost
            # more passes over its rows than the epoch makes.
            summary = summarise_codes(
                fitted, X, None if fitted.kept_valid_error is None else r2_of(fitted)
            )
            fit_input_ranges(fitted.network, X)
    return FitOutcome(n_components, fitted.network.cpu(), fitted, summary)


def fit_code_size(
    plan: FitPlan, X: Rows, max_threads: int, n_components: int
) -> FittedNetwork:
    """Fit the network of one code size to standardised X, as the plan says."""
    config, refit_config = plan.config, plan.refit_config
    if plan.bfloat16_for_large_steps_only and config.autocast is not None:
        probe = plan.build_network(n_components)
        if is_small_step(probe, X[:2].cpu(), config.batch_size, training=True):
            # Small steps gain nothing from bfloat16 (casts cost as much as
            # they save) and small data keep float32's fit.
            config = replace(config, autocast=None)
            refit_config = replace(refit_config, autocast=None)
    return fit_network(
        partial(build_start, plan, n_components),
        X,
        plan.folds,
        batch_loss=partial(_training_loss, terms=plan.loss_terms),
        config=config,
        refit_config=refit_config,
        seed=plan.seed,
        start_competes=plan.start_competes,
        optimizer_state=plan.optimizer_state,
        threads=partial(_thread_chooser, X, max_threads),
    )


def build_start(
    plan: FitPlan, n_components: int, rows: torch.Tensor | None
) -> nn.Module:
    """Return the untrained network for the training rows ``rows`` (None: all).

    A copy of the fitted network when training goes on (a failure leaves
    the fitted one intact); else the variant's network, at PCA's solution of
    the rows it trains on when it starts from PCA, so that held-out rows
    judge the start as fairly as they judge the epochs.
    """
    if plan.previous_network is not None:
        network = copy.deepcopy(plan.previous_network)
        # Training moves the codes: the ranges are fitted again after a fit,
        # and partial_fit, which never ends, leaves none.
        for path in linear_paths(network):
            path.input_range.unbound()
        return network.to(plan.device)
    network = plan.build_network(n_components)
    network.use_standardization(plan.standardization)
    if plan.starts_from_pca:
        X = plan.X if rows is None else plan.X[rows.numpy()]
        start_from_pca(
            network.encoder,
            network.decoder,
            principal_axes(X, n_components, plan.seed),
        )
    return network.to(plan.device)


def held_out_r2(fitted: FittedNetwork, X: Rows, total: float) -> float:
    """R² on the held-out rows as training judged them, else on all of X.

    ``total`` is the mean square of the rows judged (X is centred).
    """
    error = fitted.kept_valid_error
    if error is None:
        error = float(reconstruction_error(fitted.network, X))
    return 1.0 if total == 0 else 1 - error / total


def summarise_codes(fitted: FittedNetwork, X: Rows, r2: float | None) -> CodeSummary:
    """Measure the code columns' importances and order the columns by them.

    On at most :data:`~skae._ordering.IMPORTANCE_ROWS` evenly spaced rows of
    standardised X, which also give the R² when no rows were held out
    (``r2`` None); the solver's state follows the weights, so training can
    resume from the ordered network.
    """
    rows = X[importance_rows(*X.shape).to(X.device)]  # dense, also from sparse X
    if r2 is None:
        total = mean_square(rows)
        error = float(reconstruction_error(fitted.network, rows))
        r2 = 1.0 if total == 0 else 1 - error / total
    importances = code_importances(fitted.network, rows)
    # Stable: columns of equal importance (unused ones, at 0) keep their order.
    order = torch.argsort(-importances, stable=True)
    if order_code_columns(fitted.network, order, fitted.optimizer_state):
        importances = importances[order]
    return CodeSummary(r2, importances.numpy())


def _fit_and_score(
    fit_size: Callable[[int], FittedNetwork],
    r2_of: Callable[[FittedNetwork], float],
    n_components: int,
) -> tuple[float, FittedNetwork]:
    fitted = fit_size(n_components)
    return r2_of(fitted), fitted


def _thread_chooser(
    X: Rows, max_threads: int, network: nn.Module, config: TrainingConfig
) -> Any:
    return choose_threads(
        network,
        X[:2],
        config.batch_size,
        max_threads,
        training=True,
        speedup=1.0 if config.autocast is None else BFLOAT16_SPEEDUP,
    )


def _training_loss(
    network: AutoencoderNet, rows: torch.Tensor, terms: LossTerms
) -> torch.Tensor:
    return network.training_loss(rows, terms)


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
    inflate the standard error as much as the mean. Fewer than
    :data:`MIN_JUDGED_ROWS` rows never let training win.
    """
    start_errors = start_errors.double().cpu()
    falls = start_errors - trained_errors.double().cpu()
    if falls.numel() < MIN_JUDGED_ROWS:
        return False
    mean = float(falls.mean())
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
    ``rows`` (``None``: every row), seeded alike every time, so a refit on
    every row starts where the folds' networks started.
    ``threads(network, config)`` returns the thread chooser of a training
    run.
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
    keep_start = start_competes and (
        selection.best_epoch is None
        or not trained_beats_start(
            selection.start_row_errors, selection.best_row_errors
        )
    )
    if keep_start:
        network = _seeded(build, None, seed)
        train_losses = selection.train_losses
        # A fresh solver's state: the start has taken no step.
        optimizer_state = make_optimizer(network.parameters(), config).state_dict()
        kept_errors, kept_loss = selection.start_row_errors, selection.start_valid_loss
    else:
        # Every row teaches the model kept.
        if len(runs) == 1:
            network, train_losses, optimizer_state = _continue_on_every_row(
                runs[0], selection, X, batch_loss, refit_config, seed, threads
            )
        else:
            # The folds' length, from the start on all rows, on their schedule.
            network = _seeded(build, None, seed)
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
    del runs
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


def _continue_on_every_row(
    run: Run,
    selection: TrainingResult,
    X: Rows,
    batch_loss: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    config: TrainingConfig,
    seed: int,
    threads: Callable[[nn.Module, TrainingConfig], object] | None,
) -> tuple[nn.Module, list[float], dict]:
    """Take the held-out network at its best epoch on over every row, briefly.

    The network judged is the one kept: for the held-out rows' share of its
    epochs it trains on all rows at :data:`CONTINUATION_RATE` of the learning
    rate, a constant one, so the rows that judged it teach it too without
    undoing what was judged. As good as training again from the start on all
    rows, at a fraction of its cost (docs/pca_start.rst).
    """
    best_epoch = selection.best_epoch
    network = run.network
    network.load_state_dict(selection.best_weights)
    share = 1 - run.n_train / X.shape[0]
    tail = _train(
        [Run(network, X)],
        batch_loss,
        replace(
            config,
            learning_rate="constant",
            learning_rate_init=CONTINUATION_RATE * config.learning_rate_init,
        ),
        seed,
        threads,
        epochs=max(1, math.ceil(share * best_epoch)),
        first_epoch=best_epoch + 1,
    )
    return (
        network,
        [*selection.train_losses[:best_epoch], *tail.train_losses],
        tail.optimizer_state,
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
    first_epoch: int = 1,
) -> TrainingResult:
    generator = torch.Generator(runs[0].X.device).manual_seed(seed)
    return train(
        runs,
        batch_loss=batch_loss,
        config=config,
        generator=generator,
        epochs=epochs,
        first_epoch=first_epoch,
        optimizer_state=optimizer_state,
        threads=None if threads is None else threads(runs[0].network, config),
    )
