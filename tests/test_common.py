"""scikit-learn's own estimator checks, with no expected failures."""

import pytest
from sklearn.utils.estimator_checks import (
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skae import AutoencoderTransformer

# Tiny fits keep the ~50 checks per configuration fast.
CONFIGURATIONS = [
    AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0
    ),
    AutoencoderTransformer(
        n_components=3,
        hidden_layer_sizes=(8, 4),
        activation="tanh",
        solver="sgd",
        dropout=0.2,
        batch_norm=True,
        max_iter=5,
        random_state=0,
    ),
    AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(),
        solver="adamw",
        early_stopping=True,
        validation_fraction=0.5,
        max_iter=5,
        random_state=0,
    ),
]


@parametrize_with_checks(CONFIGURATIONS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# Checks that check_estimator runs only for sklearn's own estimators.
EXTRA_CHECKS = [
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
]


@pytest.mark.parametrize("estimator", CONFIGURATIONS, ids=lambda e: str(e)[:60])
@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda c: c.__name__)
def test_extra_sklearn_checks(estimator, check):
    check(type(estimator).__name__, estimator)
