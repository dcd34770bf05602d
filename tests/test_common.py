"""scikit-learn's own estimator checks, with no expected failures."""

import pytest
import torch
from sklearn.utils.estimator_checks import (
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)
from torch import nn

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks: waking torch's threads costs more than the work itself."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def small_network(n_features, n_outputs):
    """A user's own modules, as the ``network`` parameter takes them."""
    encoder = nn.Sequential(
        nn.Linear(n_features, 6), nn.GELU(), nn.Linear(6, n_outputs)
    )
    decoder = nn.Sequential(
        nn.Linear(n_outputs, 6), nn.GELU(), nn.Linear(6, n_features)
    )
    return encoder, decoder


# Tiny fits keep the ~50 checks per configuration fast.
CONFIGURATIONS = [
    AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0
    ),
    # A fraction of variance: the code size is searched for in fit.
    AutoencoderTransformer(
        n_components=0.8,
        init="random",
        hidden_layer_sizes=(8,),
        max_iter=3,
        random_state=0,
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
    # Convolutional: a -1 in image_shape fits any number of features, so the
    # checks' data of every width runs through the convolutions as 1-D signals.
    AutoencoderTransformer(
        n_components=2,
        image_shape=(1, 1, -1),
        conv_channels=(4,),
        hidden_layer_sizes=(8,),
        noise="mask",
        noise_level=0.2,
        max_iter=5,
        random_state=0,
    ),
    AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        noise="gaussian",
        noise_level=0.3,
        sparsity=0.1,
        max_iter=5,
        random_state=0,
    ),
    AutoencoderTransformer(
        n_components=2, network=small_network, max_iter=5, random_state=0
    ),
    VariationalAutoencoder(
        n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0
    ),
    VariationalAutoencoder(
        n_components=2,
        kl_weight=0.1,
        image_shape=(1, -1, 1),
        conv_channels=(4,),
        hidden_layer_sizes=(),
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


OUTLIER_DETECTORS = [
    AutoencoderOutlierDetector(
        AutoencoderTransformer(
            n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0
        )
    ),
    AutoencoderOutlierDetector(
        VariationalAutoencoder(
            n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0
        ),
        contamination=0.25,
    ),
]


@parametrize_with_checks(OUTLIER_DETECTORS)
def test_outlier_detector_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", OUTLIER_DETECTORS, ids=lambda e: str(e)[:60])
def test_outlier_detector_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)
