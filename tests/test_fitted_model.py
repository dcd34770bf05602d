"""What a fitted model tells, and what a fit refuses to learn."""

import numpy as np
import pytest

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    VariationalAutoencoder,
)
from tests.helpers import fit_quietly, low_rank_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

X_SMALL = low_rank_data(40, 4, rank=2, noise=0.1)


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderTransformer(n_components=5, max_iter=1),
        VariationalAutoencoder(n_components=5, kl_weight=0.0, max_iter=1),
        AutoencoderOutlierDetector(AutoencoderTransformer(n_components=5, max_iter=1)),
    ],
    ids=["autoencoder", "variational-without-kl", "detector"],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_code_wider_than_the_input_is_refused(estimator, method):
    if not hasattr(estimator, method):
        pytest.skip(f"{type(estimator).__name__} has no {method}")
    with pytest.raises(
        ValueError, match=r"^n_components=5 exceeds n_features=4: .* noise or sparsity"
    ):
        getattr(estimator, method)(X_SMALL)


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderTransformer(n_components=4, max_iter=1),
        AutoencoderTransformer(n_components=6, sparsity=0.1, max_iter=1),
        AutoencoderTransformer(n_components=6, noise="mask", max_iter=1),
        VariationalAutoencoder(n_components=6, max_iter=1),
    ],
    ids=["as-wide", "sparse", "denoising", "variational"],
)
def test_codes_a_term_shapes_may_be_wider_than_the_input(estimator):
    codes = fit_quietly(estimator, X_SMALL).transform(X_SMALL)
    assert codes.shape == (40, estimator.n_components)


def test_a_refused_refit_leaves_the_fitted_model_as_it_was():
    model = fit_quietly(AutoencoderTransformer(n_components=2, max_iter=2), X_SMALL)
    codes = model.transform(X_SMALL)
    with pytest.raises(ValueError, match="exceeds n_features"):
        model.set_params(n_components=5).fit(X_SMALL)
    np.testing.assert_array_equal(model.transform(X_SMALL), codes)
