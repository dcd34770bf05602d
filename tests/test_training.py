"""The training loop on tiny data: loss decreases, stopping, determinism."""

import copy
from functools import partial

import pytest
import torch

from skae._layers import build_dense
from skae._networks import AutoencoderNet, LossTerms
from skae._training import Run, TrainingConfig, make_optimizer, train
from tests.helpers import assert_same


def make_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    latent = torch.randn(64, 2, generator=generator)
    X = latent @ torch.randn(2, 6, generator=generator)
    torch.manual_seed(seed)
    network = AutoencoderNet(
        *build_dense(6, 2, 2, (8,), activation="tanh", dropout=0.0, batch_norm=False)
    )
    return network, X


def training_loss(network, rows, terms):
    return network.training_loss(rows, terms)


def run(config, seed=0, X_valid=None):
    network, X = make_problem(seed)
    result = train(
        [Run(network, X, X_valid=X_valid)],
        batch_loss=partial(training_loss, terms=LossTerms()),
        config=config,
        generator=torch.Generator().manual_seed(seed),
    )
    return network, result


def test_loss_decreases():
    _, result = run(TrainingConfig(batch_size=16, max_iter=60, learning_rate_init=0.01))
    assert result.train_losses[-1] < 0.2 * result.train_losses[0]


def test_loss_scale_converts_reported_units():
    _, plain = run(TrainingConfig(batch_size=16, max_iter=3))
    _, scaled = run(TrainingConfig(batch_size=16, max_iter=3, loss_scale=4.0))
    assert scaled.train_losses == pytest.approx(
        [4 * loss for loss in plain.train_losses]
    )


def test_identical_runs_are_identical():
    config = TrainingConfig(batch_size=16, max_iter=5)
    first, _ = run(config)
    second, _ = run(config)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_stops_when_loss_stalls():
    _, result = run(
        TrainingConfig(batch_size=16, max_iter=100, tol=1e3, n_iter_no_change=2)
    )
    assert result.stopped_early
    assert len(result.train_losses) == 4


def test_validation_reports_the_best_epoch_row_by_row():
    """Judged runs report the best epoch and its per-row errors, and the start's."""
    network, X = make_problem()
    config = TrainingConfig(
        batch_size=16, max_iter=40, learning_rate_init=0.05, n_iter_no_change=40
    )
    start_errors = torch.mean((network(X[48:]) - X[48:]) ** 2, dim=1).detach()
    result = train(
        [Run(network, X, torch.arange(48), X[48:])],
        batch_loss=partial(training_loss, terms=LossTerms()),
        config=config,
        generator=torch.Generator().manual_seed(0),
    )
    best = min(result.valid_losses)
    assert result.best_epoch == result.valid_losses.index(best) + 1
    assert result.best_valid_loss == best
    assert float(result.best_row_errors.mean()) == pytest.approx(best, rel=1e-5)
    torch.testing.assert_close(result.start_row_errors, start_errors)


def test_folds_stop_together_on_their_pooled_error():
    """Two folds train in step; the monitored loss pools every held-out row."""
    networks = [make_problem()[0], make_problem()[0]]
    X = make_problem()[1]
    halves = torch.arange(64).reshape(2, 32)
    runs = [
        Run(networks[0], X, halves[0], X[halves[1]]),
        Run(networks[1], X, halves[1], X[halves[0]]),
    ]
    result = train(
        runs,
        batch_loss=partial(training_loss, terms=LossTerms()),
        config=TrainingConfig(batch_size=16, max_iter=5),
        generator=torch.Generator().manual_seed(0),
    )
    assert len(result.valid_losses) == 5
    assert result.best_row_errors.shape == (64,)
    with torch.no_grad():
        pooled = torch.cat(
            [
                torch.mean((n(X[h]) - X[h]) ** 2, dim=1)
                for n, h in zip(networks, halves.flip(0), strict=True)
            ]
        ).mean()
    assert result.valid_losses[-1] == pytest.approx(float(pooled), rel=1e-5)


def test_relative_tol_does_not_stop_a_falling_loss_in_small_units():
    """A small loss still falling by a share of itself keeps training."""
    network, X = make_problem()
    config = dict(
        batch_size=16,
        max_iter=30,
        learning_rate_init=0.01,
        tol=0.05,
        n_iter_no_change=2,
    )
    tiny = X
    absolute = train(
        [Run(network, tiny)],
        batch_loss=partial(training_loss, terms=LossTerms()),
        config=TrainingConfig(**config),
        generator=torch.Generator().manual_seed(0),
    )
    network, _ = make_problem()
    relative = train(
        [Run(network, tiny)],
        batch_loss=partial(training_loss, terms=LossTerms()),
        config=TrainingConfig(**config, relative_tol=True),
        generator=torch.Generator().manual_seed(0),
    )
    # Absolute: falls under 0.05 count as none once the loss is below 0.05.
    assert absolute.stopped_early
    assert len(relative.train_losses) > len(absolute.train_losses)


def test_divergence_raises():
    with pytest.raises(
        ValueError, match=r"Training diverged: the loss became (nan|inf)"
    ):
        run(
            TrainingConfig(
                solver="sgd", learning_rate_init=1e8, batch_size=16, max_iter=20
            )
        )


@pytest.mark.parametrize(
    ("solver", "moments"),
    [
        ("adam", {"exp_avg", "exp_avg_sq"}),
        ("adamw", {"exp_avg", "exp_avg_sq"}),
        ("sgd", {"momentum_buffer"}),
    ],
)
def test_optimizer_state_resumes(solver, moments):
    """A resumed solver holds the moments and steps training left, as copies."""
    config = TrainingConfig(solver=solver, batch_size=16, max_iter=3)
    network, result = run(config)
    saved = result.optimizer_state
    kept = copy.deepcopy(saved)
    assert set(saved["state"]) == set(range(len(list(network.parameters()))))
    for entry in saved["state"].values():
        assert moments <= set(entry)
        if "step" in entry:
            assert entry["step"].item() == 3 * 4  # 64 rows in batches of 16
    resumed = make_optimizer(network.parameters(), config, saved)
    assert_same(resumed.state_dict()["state"], kept["state"])
    network.training_loss(make_problem()[1], LossTerms()).backward()
    resumed.step()
    # torch updates loaded tensors in place: the caller's state must not move.
    assert_same(saved, kept)
    assert not torch.equal(
        resumed.state_dict()["state"][0][sorted(moments)[0]],
        kept["state"][0][sorted(moments)[0]],
    )


def test_unknown_solver():
    network, _ = make_problem()
    with pytest.raises(ValueError, match="solver must be one of"):
        make_optimizer(network.parameters(), TrainingConfig(solver="lbfgs"))
