"""scikit-learn's own estimator checks, with no expected failures."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import (
    check_fit_non_negative,
    check_param_validation,
    check_positive_only_tag_during_fit,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from tests.helpers import decodes_into_unit_interval

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_network(n_features, n_outputs):
    """A user's own modules, as the ``network`` parameter takes them."""
    encoder = nn.Sequential(
        nn.Linear(n_features, 6), nn.GELU(), nn.Linear(6, n_outputs)
    )
    decoder = nn.Sequential(
        nn.Linear(n_outputs, 6), nn.GELU(), nn.Linear(6, n_features)
    )
    return encoder, decoder


# The Keras tutorial's model in small: binary cross-entropy, relu codes, dropout.
CROSS_ENTROPY = AutoencoderTransformer(
    n_components=2,
    hidden_layer_sizes=(8,),
    code_activation="relu",
    loss="binary_crossentropy",
    dropout=0.5,
    max_iter=5,
    random_state=0,
)

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
    # A code of one column: some checks fit make_blobs' 2 features, and a code
    # wider than the input is refused, as PCA refuses it.
    AutoencoderTransformer(
        n_components=1,
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


class UnitIntervalScaled(TransformerMixin, BaseEstimator):
    """MinMaxScaler(clip=True), then a clone of ``autoencoder``, as one estimator.

    Binary cross-entropy takes X in [0, 1] only, and refuses other data at
    fit, but sklearn's checks feed any real numbers. This is the way in that
    AutoencoderTransformer's docstring prescribes for such data; clip=True
    keeps test data beyond the training range in [0, 1] too. A Pipeline would
    do the same, but it fits its steps in place, which two checks refuse (and
    sklearn expects of Pipeline itself); this fits clones. Everything else,
    dtypes, pickling, determinism and row independence, is the autoencoder's.
    """

    def __init__(self, autoencoder=None):
        self.autoencoder = autoencoder

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.scaler_ = MinMaxScaler(clip=True).fit(X)
        self.autoencoder_ = clone(self.autoencoder).fit(self.scaler_.transform(X))
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.autoencoder_.transform(self.scaler_.transform(X))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return self.autoencoder_.get_feature_names_out()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


@parametrize_with_checks([UnitIntervalScaled(CROSS_ENTROPY)])
def test_cross_entropy_sklearn_compatible(estimator, check):
    check(estimator)


def test_cross_entropy_checks_reach_the_autoencoder():
    """The checks above train a cross-entropy model, on data in [0, 1]."""
    X = np.random.RandomState(0).normal(size=(30, 4))
    fitted = UnitIntervalScaled(CROSS_ENTROPY).fit(X).autoencoder_
    assert fitted.get_params()["loss"] == "binary_crossentropy"
    assert decodes_into_unit_interval(fitted)


# Checks of the estimator itself for binary cross-entropy: its parameters
# (checked on data in [0, 1]), and the positive_only tag it sets with the
# message sklearn expects for negative data.
@pytest.mark.parametrize(
    "estimator",
    [
        CROSS_ENTROPY,
        VariationalAutoencoder(
            n_components=2,
            hidden_layer_sizes=(8,),
            loss="binary_crossentropy",
            max_iter=5,
            random_state=0,
        ),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize(
    "check",
    [
        check_param_validation,
        check_positive_only_tag_during_fit,
        check_fit_non_negative,
    ],
    ids=lambda c: c.__name__,
)
def test_cross_entropy_sklearn_checks(estimator, check):
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
