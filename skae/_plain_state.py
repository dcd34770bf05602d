# SPDX-License-Identifier: BSD-3-Clause
"""A fitted estimator's state as plain data, for pickle, copy and ``skops.io``.

``skops.io`` stores an object through ``__getstate__`` and rebuilds it with
``__setstate__``, and can store NumPy arrays, containers and scalars, not torch
objects; pickle and :func:`copy.deepcopy` go through the same two methods. So
the state skae's estimators give is their parameters and the fields their
class declares (:mod:`skae._fitted_state`), under the names a model file
uses, and holds no torch object: the network's weights
and the optimiser's tensors travel as arrays, and a torch device parameter as
its name. :func:`restore_state` rebuilds the network from the architecture
and the weights, through the estimator's ``_restore_fitted_state`` as
:func:`skae.load` does, and runs the same checks on every fitted attribute
(:func:`~skae._fitted_state.check_fitted_state`), so that a state edited in
a file is refused as it loads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from skae._fitted_state import (
    check_fitted_state,
    complete_state,
    is_fitted_state,
    renamed,
    set_state,
)

# Keys the state adds to an estimator's parameters and fields; none ends in
# "_", which fitted attributes and parameters never start with.
_WEIGHTS = "__skae_weights"
_DEVICE = "__skae_torch_device"
# Added by scikit-learn's own __getstate__, in the states of earlier skae.
_SKLEARN_VERSION = "_sklearn_version"


def plain_state(estimator: Any) -> dict[str, Any]:
    """Return the parameters and the declared fitted state, torch objects as data."""
    fitted = estimator._get_fitted_state()
    state = {**estimator.get_params(deep=False), **fitted.attributes}
    if isinstance(state.get("device"), torch.device):
        state[_DEVICE] = str(state.pop("device"))
    if not fitted.modules:
        return state
    state[_WEIGHTS] = {
        name: tensor.detach().cpu().numpy() for name, tensor in fitted.weights.items()
    }
    if state.get("solver_state"):
        optimizer = state["solver_state"]
        state["solver_state"] = {
            **optimizer,
            "state": {
                key: {
                    name: value.detach().cpu().numpy()
                    if isinstance(value, torch.Tensor)
                    else value
                    for name, value in entry.items()
                }
                for key, entry in optimizer["state"].items()
            },
        }
    return state


def restore_state(estimator: Any, state: Any) -> None:
    """Set a state :func:`plain_state` gave, rebuilding and checking the network.

    Raises ValueError, saying what is wrong, if the state is not one a fitted
    (or unfitted) estimator of this class has.
    """
    cls = type(estimator)
    if not isinstance(state, dict):
        raise ValueError(f"A {cls.__name__} state must be a dict.")
    try:
        # States carry no version: those of skae before file format 3 store
        # fields under their old names, as files of formats 1 and 2 do.
        state = renamed(state)
    except ValueError as exc:
        raise ValueError(f"Cannot restore this {cls.__name__}: {exc}") from None
    weights = state.pop(_WEIGHTS, None)
    if _DEVICE in state:
        state["device"] = torch.device(_text(state.pop(_DEVICE)))
    names = cls._get_param_names()
    missing = sorted(set(names) - set(state))
    if missing:
        raise ValueError(f"The {cls.__name__} state lacks parameters {missing}.")
    if isinstance(state.get("solver_state"), dict):
        state["solver_state"] = _optimizer_tensors(state["solver_state"])
    state.pop(_SKLEARN_VERSION, None)
    stored = {name: value for name, value in state.items() if name not in names}
    # As skae.load: the parameters first, then the network they describe, then
    # the fields it does not derive, once all are checked.
    vars(estimator).update({name: state[name] for name in names})
    try:
        estimator._validate_params()
        fitted = is_fitted_state(cls, stored)
        if fitted:
            complete_state(cls, stored)
        derived: dict[str, Any] = {}
        if weights is not None:
            if not isinstance(weights, dict) or not cls._state_modules:
                raise ValueError("its network weights are invalid")
            derived = estimator._restore_fitted_state(
                stored, {name: _tensor(array) for name, array in weights.items()}
            )
        elif fitted and cls._state_modules:
            raise ValueError("it has fitted attributes but no network")
        check_fitted_state(estimator, stored, derived, fitted=fitted)
    except (TypeError, ValueError, RuntimeError) as exc:
        # A half-restored estimator must not be used: empty it.
        vars(estimator).clear()
        raise ValueError(f"Cannot restore this {cls.__name__}: {exc}") from None
    set_state(estimator, stored, derived)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a torch device must be named by a str, got {value!r:.80}")
    return value


def _tensor(array: Any) -> torch.Tensor:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ValueError(f"a weight must be an array of numbers, got {array!r:.80}")
    # torch cannot share read-only memory.
    return torch.from_numpy(np.require(array, requirements=("C", "W")))


def _optimizer_tensors(optimizer: dict[str, Any]) -> dict[str, Any]:
    entries = optimizer.get("state")
    if not isinstance(entries, dict):
        return optimizer  # check_fitted_state says what is wrong
    return {
        **optimizer,
        "state": {
            key: {
                name: _tensor(value) if isinstance(value, np.ndarray) else value
                for name, value in entry.items()
            }
            if isinstance(entry, dict)
            else entry
            for key, entry in entries.items()
        },
    }
