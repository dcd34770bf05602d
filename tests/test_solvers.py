"""Solver states: resumed only when they are what the solver itself keeps."""

import copy

import pytest
import torch

from skae._solvers import SOLVERS, build_solver, resumes, solver_state_problem
from skae._training import TrainingConfig, make_optimizer


def trained_state(solver, weights):
    optimizer = build_solver(solver, weights, 1e-3, 0.0)
    for weight in weights:
        weight.grad = torch.ones_like(weight)
    optimizer.step()
    return optimizer.state_dict()


def weights():
    return [torch.nn.Parameter(torch.zeros(4, 3)), torch.nn.Parameter(torch.zeros(4))]


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_state_the_solver_leaves_passes(solver):
    parameters = weights()
    state = trained_state(solver, parameters)
    assert solver_state_problem(state, parameters) is None
    assert resumes(state, solver)


def test_moments_resume_only_within_a_kind_of_solver():
    parameters = weights()
    adam, sgd = trained_state("adam", parameters), trained_state("sgd", parameters)
    assert resumes(adam, "adamw") and not resumes(adam, "sgd")
    assert not resumes(sgd, "adam")


def test_settings_of_another_solver_do_not_make_its_moments_resumable():
    """Adam's moments under SGD's settings as well: SGD would find no momentum."""
    parameters = weights()
    state = trained_state("adam", parameters)
    state["param_groups"][0].update({"momentum": 0.9, "dampening": 0, "nesterov": True})
    assert solver_state_problem(state, parameters) is None
    assert not resumes(state, "sgd")


def test_moments_for_other_weights_are_refused():
    state = trained_state("adam", weights())
    other = [torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(4))]
    assert "'exp_avg' as torch.float32 of shape (4, 3)" in solver_state_problem(
        state, other
    )


def test_make_optimizer_refuses_a_state_its_kernels_would_misread():
    """The crafted 0-d moment of a (4, 3) weight never reaches the fused step."""
    parameters = weights()
    state = trained_state("adam", parameters)
    state["state"][0]["exp_avg"] = torch.zeros(())
    kept = copy.deepcopy(state)
    with pytest.raises(ValueError, match=r"state to resume holds for weight tensor 0"):
        make_optimizer(parameters, TrainingConfig(solver="adam"), state)
    assert state["state"][0]["exp_avg"].shape == kept["state"][0]["exp_avg"].shape


def test_a_scheduler_setting_is_accepted():
    parameters = weights()
    state = trained_state("adam", parameters)
    state["param_groups"][0]["initial_lr"] = 0.003
    assert solver_state_problem(state, parameters) is None
