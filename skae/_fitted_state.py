# SPDX-License-Identifier: BSD-3-Clause
"""The fitted state a model file stores, declared per class, and its checks.

Each estimator class declares, in ``_state_fields``, the fields
(:class:`Field`) of its fitted state: the name a file stores each under, the
attribute that holds it, and the rule that checks a loaded value.
:func:`skae.save`, pickle, :func:`copy.deepcopy` and ``skops.io`` store those
fields and no other attribute; :func:`skae.load` and ``__setstate__`` accept
those and no other, and check each. A file's names are those of the
declaration, not of the attributes: renaming an attribute changes its field's
``attribute``, not the file format. None starts with an underscore; the
private names files of formats 1 and 2 used load through one fixed table,
:data:`RENAMED_FIELDS`.

:func:`skae.load` rebuilds the network from the parameters and the weights,
and lets the estimator derive what it derives from them (the wrapped encoder
and decoder, the code width). Every other value is checked here, by type,
shape, range and consistency with the rest, so that a file edited by hand is
refused when it loads rather than misbehaving later. A file that sets a value
the estimator derives must set it to the derived value.

Knows no estimator class: below the estimators, which declare their fields
with the rules of this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from skae._data import MAX_ABS_INPUT
from skae._model_file import short_repr
from skae._solvers import solver_state_problem
from skae._standardization import smallest_scale

# A rule returns what is wrong with a value, or None; it may read the rest of
# the state (``state``, by the names a file stores) and the estimator.
Rule = Callable[[Any, dict[str, Any], Any], "str | None"]
# The default of a field that files of every release store.
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Field:
    """One value of a fitted state, as a model file stores it.

    Parameters
    ----------
    name : str
        Its key in a model file (and in the plain state of pickle and skops),
        public-facing: never starting with an underscore. Part of the file
        format: it does not change when ``attribute`` does; a renamed field
        keeps loading through :data:`RENAMED_FIELDS`.

    attribute : str
        The estimator attribute that holds it.

    rule : callable
        ``rule(value, state, estimator)``: what is wrong with a loaded value,
        or None.

    required : bool, default=True
        Whether every fitted state holds it; False for a value that ``fit``
        sets only sometimes (feature names) and for one an unfitted estimator
        may hold too (``fitted=False``).

    default : object, optional
        What a fitted state that lacks the value (one from a release before
        the value existed) loads as.

    fitted : bool, default=True
        False for a value an unfitted estimator may hold too (set_output's).
    """

    name: str
    attribute: str
    rule: Rule
    required: bool = True
    default: Any = _NO_DEFAULT
    fitted: bool = True


# The names model files of formats 1 and 2, and the pickle and skops states of
# skae before format 3, stored fields under where those differ from today's:
# the private attributes' own. Loading renames them before any check.
RENAMED_FIELDS = {
    "_sklearn_output_config": "output_config",
    "_architecture": "architecture",
    "_n_features_out": "n_code_columns",
    "_optimizer_state": "solver_state",
}


def renamed(stored: dict[str, Any]) -> dict[str, Any]:
    """Return a stored state with the old names of :data:`RENAMED_FIELDS` renamed.

    Raises ValueError for a state that stores a field under both names.
    """
    both = sorted(
        old for old, new in RENAMED_FIELDS.items() if {old, new} <= set(stored)
    )
    if both:
        raise ValueError(
            f"it stores {short_repr(both)} under both their old and their new names"
        )
    return {RENAMED_FIELDS.get(name, name): value for name, value in stored.items()}


def fields_of(cls: type) -> dict[str, Field]:
    """Return the fields ``cls`` declares, by the names a file stores them under."""
    return {field.name: field for field in cls._state_fields}


def stored_state(estimator: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the declared fields an estimator holds, by name; refuse others.

    Modules the class rebuilds and the parameters are not part of it. Raises
    TypeError for any other attribute: a file or a pickle holding it would be
    refused when it loads, so it is refused when it is written.
    """
    cls = type(estimator)
    by_attribute = {field.attribute: field for field in cls._state_fields}
    undeclared = sorted(
        name
        for name in vars(estimator)
        if name not in by_attribute
        and name not in params
        and name not in cls._state_modules
    )
    if undeclared:
        raise TypeError(
            f"{cls.__name__} holds attributes {undeclared} that its fitted state "
            "does not declare, so no model file or pickle can store them. Delete "
            "them before saving or pickling."
        )
    return {
        field.name: vars(estimator)[attribute]
        for attribute, field in by_attribute.items()
        if attribute in vars(estimator)
    }


def named(cls: type, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Key attribute values by their fields' names (others keep their own)."""
    names = {field.attribute: field.name for field in cls._state_fields}
    return {names.get(key, key): value for key, value in attributes.items()}


def is_fitted_state(cls: type, stored: Mapping[str, Any]) -> bool:
    """Whether a stored state holds a value only a fitted estimator has.

    Unknown names count as fitted ones: the checks refuse them either way.
    """
    fields = fields_of(cls)
    return any(name not in fields or fields[name].fitted for name in stored)


def complete_state(cls: type, stored: dict[str, Any]) -> None:
    """Give a fitted state the values older releases did not store."""
    for name, field in fields_of(cls).items():
        if field.default is not _NO_DEFAULT:
            stored.setdefault(name, field.default)


def check_fitted_state(
    estimator: Any,
    stored: dict[str, Any],
    derived: dict[str, Any],
    *,
    fitted: bool,
) -> None:
    """Check a stored fitted state; raise ValueError saying what is wrong.

    Parameters
    ----------
    estimator : estimator object
        The estimator being loaded, its network (if any) already rebuilt.

    stored : dict
        The fitted state as the file stores it, by field name.

    derived : dict
        What the estimator set itself while its network was rebuilt, by field
        name where it is a field's.

    fitted : bool
        Whether the file describes a fitted estimator: then every field its
        class requires must be there.
    """
    for name, value in derived.items():
        if name in stored and not _same(stored[name], value):
            raise ValueError(
                f"its field {name} = {short_repr(stored[name])} does not "
                f"match the network and parameters, which give {short_repr(value)}"
            )
    fields = {
        name: field
        for name, field in fields_of(type(estimator)).items()
        if fitted or not field.fitted
    }
    unknown = sorted(set(stored) - set(fields) - set(derived))
    if unknown:
        raise ValueError(
            f"it sets fitted attributes {short_repr(unknown)} that "
            f"{type(estimator).__name__} of this skae version does not have"
        )
    state = {**stored, **derived}
    for name, field in fields.items():
        if name not in state:
            if field.required:
                raise ValueError(f"the fitted attribute {name!r} is missing")
            continue
        problem = field.rule(state[name], state, estimator)
        if problem:
            raise ValueError(f"its field {name} = {short_repr(state[name])} {problem}")


def set_state(estimator: Any, stored: dict[str, Any], derived: dict[str, Any]) -> None:
    """Set the checked fields the estimator did not derive itself."""
    fields = fields_of(type(estimator))
    for name, value in stored.items():
        if name not in derived:
            setattr(estimator, fields[name].attribute, value)


# -- rules ------------------------------------------------------------------------


def positive_int(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if type(value) is int and value >= 1:
        return None
    return "is not a positive int"


def _finite_float(value: Any) -> bool:
    return type(value) is float and math.isfinite(value)


def offset(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    return None if _finite_float(value) else "is not a finite float"


def scale(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if not (_finite_float(value) and value > 0):
        return "is not a positive float"
    # What standardisation gives: 1 for constant data, else a scale between
    # float32's resolution at mean_ and the spread of data fit accepts.
    low, high = smallest_scale(state["mean_"]), 2 * MAX_ABS_INPUT
    if value != 1.0 and not low <= value <= high:
        return f"is outside [{low:.3g}, {high:.3g}], the scales fit gives with mean_"
    return None


def mean(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if not (
        isinstance(value, np.ndarray)
        and value.dtype == np.float64
        and value.shape == (state["n_features_in_"],)
    ):
        return "is not a float64 array of shape (n_features_in_,)"
    if not np.isfinite(value).all():
        return "holds NaN or inf"
    if np.abs(value).max(initial=0.0) > MAX_ABS_INPUT:
        return f"holds means beyond {MAX_ABS_INPUT:.0e}, the largest data fit takes"
    return None


def feature_names(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if (
        isinstance(value, np.ndarray)
        and value.dtype == object
        and value.shape == (state["n_features_in_"],)
        and all(isinstance(name, str) for name in value)
    ):
        return None
    return "is not an object array of n_features_in_ strings"


def _finite_floats(value: Any) -> bool:
    return type(value) is list and all(_finite_float(item) for item in value)


def loss_curve(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if not _finite_floats(value) or min(value, default=0.0) < 0:
        return "is not a list of finite losses, each >= 0"
    if len(value) != state["n_iter_"]:
        return f"has {len(value)} entries for n_iter_ = {state['n_iter_']} epochs"
    return None


def validation_scores(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if value is None:
        return None
    # One per judged epoch: the model kept may have trained fewer epochs than
    # were judged, so their number is not n_iter_.
    if not _finite_floats(value) or not value or max(value) > 0:
        return "is neither None nor a list of scores (finite, each <= 0)"
    return None


def best_validation_score(
    value: Any, state: dict[str, Any], estimator: Any
) -> str | None:
    scores = state["validation_scores_"]
    if scores is None:
        return None if value is None else "is set, but validation_scores_ is None"
    # The score of the weights kept: an epoch's, or the untrained start's.
    if isinstance(value, float) and math.isfinite(value) and value <= 0:
        return None
    return "is not a score (a finite negative squared error)"


def best_loss(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    # Training with a validation split records its scores, and no best loss.
    if state["validation_scores_"] is None:
        expected = min(state["loss_curve_"])
    else:
        expected = None
    return None if value == expected else f"is not {expected}, from the loss curve"


def reconstruction_r2(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    # None: measured by no fit (partial_fit's, or a file from before 0.2).
    if value is None or (_finite_float(value) and value <= 1):
        return None
    return "is neither None nor a finite R² (at most 1)"


def component_importances(
    value: Any, state: dict[str, Any], estimator: Any
) -> str | None:
    if (value is None) != (state.get("reconstruction_r2_") is None):
        return "must be None exactly when reconstruction_r2_ is None"
    if value is None:
        return None
    if not (
        isinstance(value, np.ndarray)
        and value.dtype == np.float64
        and value.shape == (state["n_code_columns"],)
    ):
        return "is not a float64 array of shape (n_components_,)"
    if not np.isfinite(value).all():
        return "holds NaN or inf"
    return None


def code_width(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    """Run zero rows through the encoder and the decoder: the widths must agree."""
    # The code size fitted: n_components as it was at fit time.
    n_components = estimator._architecture["n_components"]
    if isinstance(n_components, int) and value != n_components:
        return f"is not n_components = {n_components}, the network's at fit time"
    n_features = state["n_features_in_"]
    with torch.inference_mode():
        codes = state["encoder_"](torch.zeros(2, n_features, dtype=torch.float32))
        back = state["decoder_"](torch.zeros(2, value, dtype=torch.float32))
    if codes.shape != (2, value) or back.shape != (2, n_features):
        return (
            f"but the encoder returns {codes.shape[-1]} columns and the decoder "
            f"{back.shape[-1]}, for {n_features} features"
        )
    return None


def optimizer_state(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    """Check the solver's state against what the solver keeps for these weights."""
    return solver_state_problem(value, list(state["_network"].parameters()))


def inner_estimator(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    """Check for a fitted clone of the detector's ``estimator`` (or its default)."""
    expected = type(estimator._estimator())
    if type(value) is not expected:
        return f"is not a fitted {expected.__name__}, as the estimator parameter says"
    if getattr(value, "n_features_in_", None) != state["n_features_in_"]:
        return f"is not fitted to n_features_in_ = {state['n_features_in_']} features"
    return None


def rebuilt(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    """Nothing more to check: the network was rebuilt from this value."""
    return None


def output_config(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if (
        type(value) is dict
        and set(value) <= {"transform"}
        and all(item in _OUTPUT_CONTAINERS for item in value.values())
    ):
        return None
    return f"is not set_output's setting (transform: one of {_OUTPUT_CONTAINERS})"


_OUTPUT_CONTAINERS = ("default", "pandas", "polars")
# What scikit-learn sets on every estimator, skae's all included: set_output's
# setting (fitted or not), and validate_data's record of the features fit saw.
SKLEARN_FIELDS = (
    Field(
        "output_config",
        "_sklearn_output_config",
        output_config,
        required=False,
        fitted=False,
    ),
    Field("n_features_in_", "n_features_in_", positive_int),
    Field("feature_names_in_", "feature_names_in_", feature_names, required=False),
)


def _same(saved: Any, derived: Any) -> bool:
    """Equal in type and value, arrays and containers element by element."""
    if saved is derived:
        return True
    if type(saved) is not type(derived):
        return False
    if isinstance(derived, np.ndarray):
        return saved.dtype == derived.dtype and np.array_equal(saved, derived)
    if isinstance(derived, dict):
        return saved.keys() == derived.keys() and all(
            _same(saved[key], derived[key]) for key in derived
        )
    if isinstance(derived, list | tuple):
        return len(saved) == len(derived) and all(
            _same(a, b) for a, b in zip(saved, derived, strict=True)
        )
    if isinstance(derived, torch.nn.Module):
        return saved is derived
    return bool(saved == derived)
