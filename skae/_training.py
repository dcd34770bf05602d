# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: the one training loop every skae network goes through.

``train -> run_epoch -> (loss of a batch, optimizer step)``. It takes any module
and a function giving its training loss on a batch; it knows nothing about
sklearn or about what the loss contains.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from skae._data import INFERENCE_BATCH_SIZE, Rows, batch_bounds, batch_rows
from skae._progress import progress_bar
from skae._solvers import build_solver, resumes, solver_state_problem
from skae._threads import ThreadChooser


@dataclass(frozen=True)
class TrainingConfig:
    """Everything the loop needs to know, decided once by the estimator."""

    solver: str = "adam"
    learning_rate: str = "constant"
    learning_rate_init: float = 1e-3
    alpha: float = 0.0
    batch_size: int = 256
    max_iter: int = 200
    tol: float = 1e-4
    n_iter_no_change: int = 10
    # Training's autocast dtype (bfloat16 mixed precision), None for float32.
    # Weights, optimiser state, losses and held-out errors stay float32.
    autocast: torch.dtype | None = None
    # Whether tol is a share of the best loss so far rather than a fall in
    # network units (tol='auto').
    relative_tol: bool = False
    verbose: bool = False
    # A per-epoch bar on stderr; the caller decides (a terminal, not verbose).
    progress: bool = False
    # Converts the reconstruction error in network units (validation, and a
    # squared-error training loss) into the units reported to the user.
    loss_scale: float = 1.0
    # Converts the training loss; None: as loss_scale. Cross-entropy, in nats,
    # has no units to convert.
    training_loss_scale: float | None = None


@dataclass
class Run:
    """One network trained on some rows and, optionally, judged on others.

    :func:`train` trains several runs in step, one per fold of a
    cross-validation, so that they stop together on their pooled error.
    """

    network: nn.Module
    # The rows it trains on are X[rows] (all of X if None), gathered batch by
    # batch rather than copied; sparse rows are made dense batch by batch.
    X: Rows
    rows: torch.Tensor | None = None
    X_valid: Rows | None = None

    @property
    def n_train(self) -> int:
        return self.X.shape[0] if self.rows is None else self.rows.shape[0]


@dataclass
class TrainingResult:
    """What one call of :func:`train` did, in reported units."""

    train_losses: list[float] = field(default_factory=list)
    # Pooled over the runs' held-out rows, one per epoch.
    valid_losses: list[float] = field(default_factory=list)
    # Validation loss of the untrained networks, and of the best epoch.
    start_valid_loss: float | None = None
    best_valid_loss: float | None = None
    # The epoch of the lowest pooled validation loss (from 1), if judged.
    best_epoch: int | None = None
    # Per held-out row, in network units: the start's error and the best epoch's.
    start_row_errors: torch.Tensor | None = None
    best_row_errors: torch.Tensor | None = None
    # A single judged run's weights after its best epoch (copies).
    best_weights: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False
    optimizer_state: dict[str, Any] = field(default_factory=dict)


def make_optimizer(
    parameters: Any, config: TrainingConfig, state: dict[str, Any] | None = None
) -> torch.optim.Optimizer:
    """Build the solver; ``state`` resumes a previous one (its moments, its steps)."""
    optimizer = build_solver(
        config.solver, parameters, config.learning_rate_init, config.alpha
    )
    if state:
        # Torch's fused kernels trust a state's shapes: check it all first.
        problem = solver_state_problem(state, optimizer.param_groups[0]["params"])
        if problem:
            raise ValueError(f"The optimiser state to resume {problem}.")
    if state and resumes(state, config.solver):
        fresh = optimizer.state_dict()["param_groups"]
        # Load a copy, as torch updates loaded tensors in place and a failed
        # step must not touch the caller's state; the config's
        # hyperparameters win.
        optimizer.load_state_dict(copy.deepcopy(state))
        for group, new in zip(optimizer.param_groups, fresh, strict=True):
            group.update({key: new[key] for key in new if key != "params"})
    return optimizer


BatchLoss = Callable[[torch.Tensor], torch.Tensor]


def run_epoch(
    network: nn.Module,
    batch_loss: BatchLoss,
    optimizer: torch.optim.Optimizer,
    X: Rows,
    batch_size: int,
    generator: torch.Generator,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    threads: ThreadChooser | None = None,
    rows: torch.Tensor | None = None,
    autocast: torch.dtype | None = None,
) -> torch.Tensor:
    """One pass over X (or X[rows]) in shuffled mini-batches; returns the mean loss.

    The loss stays on the device so the epoch needs no host synchronisation.
    ``threads`` sets torch's thread count for each step; ``None`` leaves it.
    """
    network.train()
    n_samples = X.shape[0] if rows is None else rows.shape[0]
    order = torch.randperm(n_samples, generator=generator, device=X.device)
    if rows is not None:
        order = rows[order]
    total = torch.zeros((), device=X.device)
    step_threads = threads if threads is not None else nullcontext()
    for start, stop in batch_bounds(n_samples, batch_size):
        mixed = (
            nullcontext()
            if autocast is None
            else torch.autocast(X.device.type, dtype=autocast)
        )
        with step_threads:
            with mixed:
                loss = batch_loss(batch_rows(X, order[start:stop])).float()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.detach() * (stop - start)
    return total / n_samples


def reconstruction_error(network: nn.Module, X: Rows) -> torch.Tensor:
    """Mean squared reconstruction error of X in evaluation mode, on device."""
    return torch.mean(row_errors(network, X))


def row_errors(network: nn.Module, X: Rows) -> torch.Tensor:
    """Each row's mean squared reconstruction error, in evaluation mode, on device."""
    network.eval()
    errors = torch.empty(X.shape[0], device=X.device)
    with torch.inference_mode():
        for start, stop in batch_bounds(X.shape[0], INFERENCE_BATCH_SIZE):
            rows = X[start:stop]
            errors[start:stop] = torch.mean((network(rows) - rows) ** 2, dim=1)
    return errors


# The callbacks of epoch_callback, per thread: a fit reports to its own thread's.
_epoch_callbacks = threading.local()


@dataclass(frozen=True)
class EpochReport:
    """What :func:`epoch_callback` passes its callback after each epoch.

    Attributes
    ----------
    epoch : int
        The epoch just trained, from 1 in each network a fit trains (a
        fractional ``n_components`` trains one network per code size tried).
        A network judged on held-out rows then trains on every row from its
        best epoch on: those epochs count on from it.

    loss : float
        Its training loss, as ``loss_curve_`` records it (where a judged
        network goes on over every row, it records the judged epochs up to
        the best one only).

    validation_score : float or None
        Its score on the held-out rows, as it is appended to
        ``validation_scores_``; None when no rows are held out.
    """

    epoch: int
    loss: float
    validation_score: float | None


@contextmanager
def epoch_callback(callback: Callable[[EpochReport], object]) -> Iterator[None]:
    """Call ``callback`` after every epoch of the skae fits inside the block.

    Use it to log training as it goes (to a file, a dashboard, an experiment
    tracker) or to stop a fit on your own terms, such as a time budget. The
    callback receives an :class:`EpochReport`; if it returns a true value,
    training stops after that epoch and the fit ends as early stopping ends
    it: with the best held-out epoch's weights when rows are held out, and
    without a ``ConvergenceWarning``. An exception raised by the callback
    aborts the fit, which then leaves the estimator as it was.

    It sees the fits (``fit``, ``partial_fit``, ``fit_transform``, inside
    pipelines and searches too) that run in the thread that entered the
    block; workers of ``n_jobs`` run elsewhere and are not seen. Blocks nest.
    It adds no parameter to the estimators, so they clone, pickle and save
    as before.

    Parameters
    ----------
    callback : callable
        Called as ``callback(report)`` with an :class:`EpochReport`; a true
        return value stops training.

    See Also
    --------
    EpochReport : What the callback receives.
    fixed_threads : Another setting for the skae calls inside a block.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer, epoch_callback
    >>> X = np.random.RandomState(0).normal(size=(200, 8))
    >>> losses = []
    >>> def log_and_stop(report):
    ...     losses.append(report.loss)
    ...     return report.epoch == 3  # stop after three epochs
    >>> with epoch_callback(log_and_stop):
    ...     ae = AutoencoderTransformer(max_iter=50, random_state=0).fit(X)
    >>> ae.n_iter_, len(losses)
    (3, 3)
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r:.80}.")
    if not hasattr(_epoch_callbacks, "callbacks"):
        _epoch_callbacks.callbacks = []
    _epoch_callbacks.callbacks.append(callback)
    try:
        yield
    finally:
        _epoch_callbacks.callbacks.remove(callback)


def train(
    runs: list[Run],
    *,
    batch_loss: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    config: TrainingConfig,
    generator: torch.Generator,
    epochs: int | None = None,
    first_epoch: int = 1,
    optimizer_state: dict[str, Any] | None = None,
    threads: ThreadChooser | None = None,
) -> TrainingResult:
    """Train every run's network in place, in step, epoch by epoch.

    ``batch_loss(network, rows)`` computes a network's training loss on a
    batch; held-out rows are judged by the plain reconstruction error.

    With ``epochs``, train exactly that many epochs (their length was chosen
    before), counted from ``first_epoch``. Otherwise train up to
    ``config.max_iter`` epochs and stop as MLPRegressor does: once the
    monitored loss has not improved for more than ``n_iter_no_change``
    epochs. The monitored loss is the validation error pooled over every
    run's held-out rows when they have some (each run is one fold of a
    cross-validation), else the training loss. An
    improvement is a fall of more than ``tol`` (network units) or, with
    ``relative_tol``, of more than that share of the best loss so far.

    Judged runs report the best epoch and, row by row, its errors and the
    untrained networks' errors, for the caller to choose between them; their
    weights stay those of the last epoch (a single run reports its best
    weights too). ``optimizer_state`` resumes the solver of a single run.
    ``threads`` sets torch's thread count per step.

    Raises
    ------
    ValueError
        If the loss or, after the last step, a weight becomes NaN or infinite
        (training diverged).
    """
    optimizers = [
        make_optimizer(run.network.parameters(), config, optimizer_state)
        for run in runs
    ]
    schedulers = [
        torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer,
            config.max_iter * len(batch_bounds(run.n_train, config.batch_size)),
        )
        if config.learning_rate == "cosine"
        else None
        for run, optimizer in zip(runs, optimizers, strict=True)
    ]
    judged = epochs is None and runs[0].X_valid is not None
    train_weights = torch.tensor([float(run.n_train) for run in runs])
    train_weights /= train_weights.sum()
    scales = [
        config.loss_scale
        if config.training_loss_scale is None
        else config.training_loss_scale,
        config.loss_scale,
    ]
    result = TrainingResult()
    if judged:
        result.start_row_errors = _pooled_row_errors(runs)
        result.start_valid_loss = (
            result.start_row_errors.mean().item() * config.loss_scale
        )
    best_loss, epochs_without_improvement = float("inf"), 0
    n_epochs = config.max_iter if epochs is None else epochs
    bar = progress_bar(
        range(first_epoch, first_epoch + n_epochs), enabled=config.progress
    )
    for epoch in bar:
        train_loss = sum(
            weight
            * run_epoch(
                run.network,
                partial(batch_loss, run.network),
                optimizer,
                run.X,
                config.batch_size,
                generator,
                scheduler,
                threads,
                run.rows,
                config.autocast,
            )
            for run, optimizer, scheduler, weight in zip(
                runs, optimizers, schedulers, train_weights.tolist(), strict=True
            )
        )
        epoch_losses = [train_loss]
        if judged:
            valid_errors = _pooled_row_errors(runs)
            epoch_losses.append(valid_errors.mean())
        # The one host synchronisation of the epoch.
        losses = [
            loss * scale
            for loss, scale in zip(
                torch.stack(epoch_losses).tolist(), scales, strict=False
            )
        ]
        _check_finite(losses[0], epoch, config)
        result.train_losses.append(losses[0])
        if judged:
            result.valid_losses.append(losses[1])
        if config.verbose:
            _print_epoch(epoch, losses)
        valid_loss = losses[1] if judged else None
        stop_asked = False
        callbacks = tuple(getattr(_epoch_callbacks, "callbacks", ()))
        if callbacks:
            score = None if valid_loss is None else -valid_loss
            report = EpochReport(epoch, losses[0], score)
            for callback in callbacks:
                stop_asked |= bool(callback(report))
        bar.set_postfix_str(f"loss {losses[-1]:.4g}", refresh=False)
        if epochs is not None:
            if stop_asked:
                result.stopped_early = True
                break
            continue

        monitored = losses[-1]
        margin = (
            config.tol * best_loss
            if config.relative_tol
            else config.tol * scales[len(losses) - 1]
        )
        if monitored > best_loss - margin:
            epochs_without_improvement += 1
        else:
            epochs_without_improvement = 0
        if monitored < best_loss:
            best_loss = monitored
            if judged:
                result.best_epoch = epoch
                result.best_valid_loss = monitored
                result.best_row_errors = valid_errors
                if len(runs) == 1:
                    result.best_weights = {
                        name: tensor.clone()
                        for name, tensor in runs[0].network.state_dict().items()
                    }
        if stop_asked or epochs_without_improvement > config.n_iter_no_change:
            result.stopped_early = True
            if config.verbose:
                _print_stop(config, validation=judged, asked=stop_asked)
            break
    bar.close()
    for run, optimizer in zip(runs, optimizers, strict=True):
        _check_finite_weights(run.network, optimizer, config)
        run.network.eval()
    if len(runs) == 1:
        result.optimizer_state = optimizers[0].state_dict()
    return result


def _pooled_row_errors(runs: list[Run]) -> torch.Tensor:
    """Every run's per-row errors on its held-out rows, end to end."""
    return torch.cat([row_errors(run.network, run.X_valid) for run in runs])


def _check_finite(loss: float, epoch: int, config: TrainingConfig) -> None:
    if loss != loss or loss in (float("inf"), float("-inf")):
        raise ValueError(
            f"Training diverged: the loss became {loss} in epoch {epoch}. Lower "
            f"learning_rate_init (it is {config.learning_rate_init:g}), or check the "
            "input for extreme values."
        )


def _check_finite_weights(
    network: nn.Module, optimizer: torch.optim.Optimizer, config: TrainingConfig
) -> None:
    """Catch weights, or the solver's moments, that overflowed in the last step.

    Moments overflow (squared gradients beyond float32) before weights do; a
    model holding them could not resume training.
    """
    tensors = [t for t in network.state_dict().values() if t.is_floating_point()]
    tensors += [
        value
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor) and value.is_floating_point()
    ]
    if tensors and not torch.stack([t.isfinite().all() for t in tensors]).all():
        raise ValueError(
            "Training diverged: the weights or the solver's moments became inf or "
            "NaN in the last step. Lower "
            f"learning_rate_init (it is {config.learning_rate_init:g}), or check the "
            "input for extreme values."
        )


def _print_epoch(epoch: int, losses: list[float]) -> None:
    print(f"Iteration {epoch}, loss = {losses[0]:.8f}")
    if len(losses) > 1:
        print(f"Validation score: {-losses[1]:.8f}")


def _print_stop(config: TrainingConfig, *, validation: bool, asked: bool) -> None:
    if asked:
        print("The epoch callback asked to stop. Stopping.")
        return
    monitored = "Validation score" if validation else "Training loss"
    print(
        f"{monitored} did not improve more than tol={config.tol:g} for "
        f"{config.n_iter_no_change} consecutive epochs. Stopping."
    )


def optimizer_state_to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    """Copy an optimiser's state_dict with its tensors moved to the CPU."""
    return {
        "state": {
            key: {
                name: value.cpu() if torch.is_tensor(value) else value
                for name, value in entry.items()
            }
            for key, entry in state["state"].items()
        },
        "param_groups": state["param_groups"],
    }
