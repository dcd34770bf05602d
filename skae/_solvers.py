# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: the solvers skae trains with, and checks of a state to resume.

A solver's state (Adam's moments and step counts, SGD's momentum) is read
and written by torch's fused kernels without any check of its own: a moment
of the wrong shape makes them write outside their buffers. So a state is
resumed only after every entry is compared with what the solver itself
creates for the same weights, found by running it for one step on a tiny
weight: the same names, shapes and dtypes, finite values in the range
training produces, and settings of the solver's own types and ranges.

Imports torch only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

import torch

SOLVERS = ("adam", "adamw", "sgd")
# Settings that must lie in [0, 1] (the rest in [0, inf)), and the moments
# that are averages of squares, never negative.
_FRACTIONS = frozenset({"betas", "momentum", "dampening"})
_SQUARES = frozenset({"exp_avg_sq", "max_exp_avg_sq"})
# A setting torch may add in other versions, or a scheduler adds
# (``initial_lr``), is one short plain value.
_MAX_SETTING_CHARS = 100


def build_solver(
    solver: str, parameters: Any, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Build one of :data:`SOLVERS` over ``parameters``."""
    # Fused kernels update all weights in one pass, which shortens CPU epochs
    # of the default network.
    if solver == "adam":
        return torch.optim.Adam(
            parameters, lr=lr, weight_decay=weight_decay, fused=True
        )
    if solver == "adamw":
        return torch.optim.AdamW(
            parameters, lr=lr, weight_decay=weight_decay, fused=True
        )
    if solver == "sgd":
        # MLPRegressor's defaults for its sgd solver.
        return torch.optim.SGD(
            parameters,
            lr=lr,
            momentum=0.9,
            nesterov=True,
            weight_decay=weight_decay,
            fused=True,
        )
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")


class _Reference(NamedTuple):
    """What a solver keeps: its settings, and per weight tensor its moments.

    ``moments`` maps each name to its dtype, or None for the weight's own
    dtype, and to whether it is shaped as the weight (else a 0-d count).
    """

    settings: dict[str, Any]
    moments: dict[str, tuple[torch.dtype | None, bool]]


@cache
def _reference(solver: str) -> _Reference:
    weight = torch.nn.Parameter(torch.zeros(2, 3, dtype=torch.float32))
    optimizer = build_solver(solver, [weight], 1e-3, 0.0)
    weight.grad = torch.zeros_like(weight)
    optimizer.step()
    state = optimizer.state_dict()
    (group,) = state["param_groups"]
    moments = {
        name: (
            None if value.dtype == weight.dtype and value.dim() else value.dtype,
            value.shape == weight.shape,
        )
        for name, value in state["state"][0].items()
    }
    return _Reference({k: v for k, v in group.items() if k != "params"}, moments)


def resumes(state: dict[str, Any], solver: str) -> bool:
    """Tell whether ``solver`` continues from ``state``, a state checked before.

    Only a state of the same kind of solver carries over (Adam's moments mean
    nothing to SGD), known by its moments and its settings.
    """
    reference = _reference(solver)
    (group,) = state["param_groups"]
    return set(reference.settings) <= set(group) and all(
        set(entry) == set(reference.moments) for entry in state["state"].values()
    )


def solver_state_problem(state: Any, parameters: Sequence[torch.Tensor]) -> str | None:
    """Say what is wrong with a solver state for ``parameters``, or None.

    The state must be one that a solver of :data:`SOLVERS` leaves after
    training these weight tensors: ``{"state": ..., "param_groups": [...]}``
    as ``state_dict()`` returns it.
    """
    if not (type(state) is dict and set(state) == {"state", "param_groups"}):
        return "is not an optimiser state"
    groups, moments = state["param_groups"], state["state"]
    if not (
        type(groups) is list
        and len(groups) == 1
        and type(groups[0]) is dict
        and type(moments) is dict
    ):
        return "is not an optimiser state of one parameter group"
    indices = groups[0].get("params")
    if not (
        type(indices) is list
        and all(type(index) is int for index in indices)
        and indices == list(range(len(parameters)))
    ):
        return f"does not list the network's {len(parameters)} weight tensors"
    solvers = [
        solver
        for solver in SOLVERS
        if all(
            type(entry) is dict and set(entry) == set(_reference(solver).moments)
            for entry in moments.values()
        )
    ]
    if not solvers:
        return f"does not hold the moments of a solver of {SOLVERS}"
    for index, entry in moments.items():
        if not (type(index) is int and 0 <= index < len(parameters)):
            return f"holds moments for a weight tensor {index!r} the network lacks"
        problem = _moments_problem(entry, parameters[index], _reference(solvers[0]))
        if problem:
            return f"holds for weight tensor {index} {problem}"
    settings: dict[str, Any] = {}
    for solver in solvers:
        settings.update(_reference(solver).settings)
    for name, value in groups[0].items():
        if name != "params" and not _setting_ok(name, value, settings):
            return f"holds a setting {name!r} that the solver does not take"
    return None


def _moments_problem(
    entry: dict[str, Any], weight: torch.Tensor, reference: _Reference
) -> str | None:
    for name, value in entry.items():
        dtype, weight_shaped = reference.moments[name]
        dtype = weight.dtype if dtype is None else dtype
        shape = tuple(weight.shape) if weight_shaped else ()
        if not isinstance(value, torch.Tensor):
            return f"{name!r} as {type(value).__name__}, not a tensor"
        if not (
            value.dtype == dtype
            and tuple(value.shape) == shape
            and value.device.type == "cpu"
        ):
            return (
                f"{name!r} as {value.dtype} of shape {tuple(value.shape)} on "
                f"{value.device.type}, where the solver keeps {dtype} of shape "
                f"{shape} on cpu"
            )
        if not bool(torch.isfinite(value).all()):
            return f"{name!r} with NaN or inf"
        if name == "step" and not bool((value >= 1) & (value == value.round())):
            return f"'step' = {value.item()}, not a whole number of steps >= 1"
        if name in _SQUARES and bool((value < 0).any()):
            return f"a negative {name!r}, which averages squares"
    return None


def _setting_ok(name: str, value: Any, settings: dict[str, Any]) -> bool:
    """Whether ``value`` has the type and range of the solver's own setting."""
    if name not in settings:
        return (
            value is None
            or type(value) is bool
            or _number_ok(name, value)
            or (type(value) is str and len(value) <= _MAX_SETTING_CHARS)
        )
    expected = settings[name]
    if expected is None or type(expected) is bool:
        return value is None or type(value) is bool
    if type(expected) is tuple:
        return (
            type(value) is tuple
            and len(value) == len(expected)
            and all(_number_ok(name, item) for item in value)
        )
    return _number_ok(name, value)


def _number_ok(name: str, value: Any) -> bool:
    # Compared, not converted: an int of 400 digits has no float.
    if type(value) not in (int, float) or value != value:
        return False
    return 0 <= value <= (1 if name in _FRACTIONS else sys.float_info.max)
