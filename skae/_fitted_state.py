# SPDX-License-Identifier: BSD-3-Clause
"""Checks of a loaded estimator's fitted state against its network and parameters.

:func:`skae.load` rebuilds the network from the parameters and the weights,
and lets the estimator derive what it derives from them (the wrapped encoder
and decoder, the code width). Every other fitted attribute a file holds is
checked here, by type, shape, range and consistency with the rest, so that a
file edited by hand is refused when it loads rather than misbehaving later.
A file that sets an attribute the estimator derives must set it to the
derived value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from skae._autoencoder import AutoencoderTransformer
from skae._base import BaseAutoencoder
from skae._data import MAX_ABS_INPUT
from skae._model_file import short_repr
from skae._outlier import AutoencoderOutlierDetector
from skae._solvers import solver_state_problem
from skae._standardization import smallest_scale

# A rule returns what is wrong with an attribute's value, or None; it may read
# the other attributes (``state``) and the estimator's parameters.
Rule = Callable[[Any, dict[str, Any], BaseEstimator], "str | None"]


def check_fitted_state(
    estimator: BaseEstimator,
    attributes: dict[str, Any],
    derived: dict[str, Any],
    *,
    fitted: bool,
) -> None:
    """Check a file's fitted attributes; raise ValueError saying what is wrong.

    Parameters
    ----------
    estimator : estimator object
        The estimator being loaded, its network (if any) already rebuilt.

    attributes : dict
        Fitted attributes as the file stores them.

    derived : dict
        Attributes the estimator set itself while its network was rebuilt.

    fitted : bool
        Whether the file describes a fitted estimator: then every attribute
        its class has after ``fit`` must be there.
    """
    for name, value in derived.items():
        if name in attributes and not _same(attributes[name], value):
            raise ValueError(
                f"its attribute {name} = {short_repr(attributes[name])} does not "
                f"match the network and parameters, which give {short_repr(value)}"
            )
    rules = {**_COMMON_RULES, **(_rules_for(type(estimator)) if fitted else {})}
    unknown = sorted(set(attributes) - set(rules) - set(derived))
    if unknown:
        raise ValueError(
            f"it sets fitted attributes {short_repr(unknown)} that "
            f"{type(estimator).__name__} of this skae version does not have"
        )
    state = {**attributes, **derived}
    for name, (required, rule) in rules.items():
        if name not in state:
            if required:
                raise ValueError(f"the fitted attribute {name!r} is missing")
            continue
        problem = rule(state[name], state, estimator)
        if problem:
            raise ValueError(
                f"its attribute {name} = {short_repr(state[name])} {problem}"
            )


def _rules_for(cls: type) -> dict[str, tuple[bool, Rule]]:
    for base, rules in _RULES.items():
        if issubclass(cls, base):
            return rules
    return {}


# -- rules ------------------------------------------------------------------------


def _positive_int(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if type(value) is int and value >= 1:
        return None
    return "is not a positive int"


def _finite_float(value: Any) -> bool:
    return type(value) is float and math.isfinite(value)


def _offset(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    return None if _finite_float(value) else "is not a finite float"


def _scale(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if not (_finite_float(value) and value > 0):
        return "is not a positive float"
    # What standardisation gives: 1 for constant data, else a scale between
    # float32's resolution at mean_ and the spread of data fit accepts.
    low, high = smallest_scale(state["mean_"]), 2 * MAX_ABS_INPUT
    if value != 1.0 and not low <= value <= high:
        return f"is outside [{low:.3g}, {high:.3g}], the scales fit gives with mean_"
    return None


def _mean(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
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


def _feature_names(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
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


def _loss_curve(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if not _finite_floats(value) or min(value, default=0.0) < 0:
        return "is not a list of finite losses, each >= 0"
    if len(value) != state["n_iter_"]:
        return f"has {len(value)} entries for n_iter_ = {state['n_iter_']} epochs"
    return None


def _validation_scores(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if value is None:
        return None
    # One per judged epoch: the model kept may have trained fewer epochs than
    # were judged, so their number is not n_iter_.
    if not _finite_floats(value) or not value or max(value) > 0:
        return "is neither None nor a list of scores (finite, each <= 0)"
    return None


def _best_validation_score(
    value: Any, state: dict[str, Any], estimator: Any
) -> str | None:
    scores = state["validation_scores_"]
    if scores is None:
        return None if value is None else "is set, but validation_scores_ is None"
    # The score of the weights kept: an epoch's, or the untrained start's.
    if isinstance(value, float) and math.isfinite(value) and value <= 0:
        return None
    return "is not a score (a finite negative squared error)"


def _best_loss(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    # Training with a validation split records its scores, and no best loss.
    if state["validation_scores_"] is None:
        expected = min(state["loss_curve_"])
    else:
        expected = None
    return None if value == expected else f"is not {expected}, from the loss curve"


def _reconstruction_r2(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    # None: measured by no fit (partial_fit's, or a file from before 0.2).
    if value is None or (_finite_float(value) and value <= 1):
        return None
    return "is neither None nor a finite R² (at most 1)"


def _component_importances(
    value: Any, state: dict[str, Any], estimator: Any
) -> str | None:
    if (value is None) != (state.get("reconstruction_r2_") is None):
        return "must be None exactly when reconstruction_r2_ is None"
    if value is None:
        return None
    if not (
        isinstance(value, np.ndarray)
        and value.dtype == np.float64
        and value.shape == (state["_n_features_out"],)
    ):
        return "is not a float64 array of shape (n_components_,)"
    if not np.isfinite(value).all():
        return "holds NaN or inf"
    return None


def _code_width(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
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


def _optimizer_state(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    """Check the solver's state against what the solver keeps for these weights."""
    return solver_state_problem(value, list(state["_network"].parameters()))


def _inner_estimator(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    expected = type(estimator.estimator or AutoencoderTransformer())
    if type(value) is not expected:
        return f"is not a fitted {expected.__name__}, as the estimator parameter says"
    if getattr(value, "n_features_in_", None) != state["n_features_in_"]:
        return f"is not fitted to n_features_in_ = {state['n_features_in_']} features"
    return None


def _output_config(value: Any, state: dict[str, Any], estimator: Any) -> str | None:
    if (
        type(value) is dict
        and set(value) <= {"transform"}
        and all(item in _OUTPUT_CONTAINERS for item in value.values())
    ):
        return None
    return f"is not set_output's setting (transform: one of {_OUTPUT_CONTAINERS})"


_OUTPUT_CONTAINERS = ("default", "pandas", "polars")
# Set by scikit-learn's set_output, fitted or not.
_COMMON_RULES: dict[str, tuple[bool, Rule]] = {
    "_sklearn_output_config": (False, _output_config),
}
_TRANSFORMER_RULES: dict[str, tuple[bool, Rule]] = {
    "n_features_in_": (True, _positive_int),
    "feature_names_in_": (False, _feature_names),
    "mean_": (True, _mean),
    "scale_": (True, _scale),
    "_n_features_out": (True, _code_width),
    "_optimizer_state": (True, _optimizer_state),
    "n_iter_": (True, _positive_int),
    "loss_curve_": (True, _loss_curve),
    "validation_scores_": (True, _validation_scores),
    "best_validation_score_": (True, _best_validation_score),
    "best_loss_": (True, _best_loss),
    "reconstruction_r2_": (True, _reconstruction_r2),
    "component_importances_": (True, _component_importances),
}
_DETECTOR_RULES: dict[str, tuple[bool, Rule]] = {
    "n_features_in_": (True, _positive_int),
    "feature_names_in_": (False, _feature_names),
    "estimator_": (True, _inner_estimator),
    "offset_": (True, _offset),
}
_RULES: dict[type, dict[str, tuple[bool, Rule]]] = {
    BaseAutoencoder: _TRANSFORMER_RULES,
    AutoencoderOutlierDetector: _DETECTOR_RULES,
}


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
