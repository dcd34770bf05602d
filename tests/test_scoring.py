"""reconstruction_scorer: one rule for every reducer with an inverse."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.decomposition import PCA, KernelPCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, reconstruction_scorer
from tests.helpers import low_rank_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def curve_data(n_samples=240, n_features=8, seed=0):
    """Rows near a closed curve: one angle, mapped non-linearly into n_features."""
    rng = np.random.RandomState(seed)
    angle = rng.uniform(0, 2 * np.pi, size=(n_samples, 1))
    frequencies = np.arange(1, n_features // 2 + 1)
    X = np.hstack([np.cos(angle * frequencies), np.sin(angle * frequencies)])
    return X + 0.02 * rng.normal(size=X.shape)


def held_out_errors(candidates, X, cv):
    """Mean squared test reconstruction error of each candidate, fold by fold."""
    errors = []
    for candidate in candidates:
        fold_errors = []
        for train, test in cv.split(X):
            fitted = clone(candidate).fit(X[train])
            X_back = fitted.inverse_transform(fitted.transform(X[test]))
            fold_errors.append(np.mean((X[test] - X_back) ** 2))
        errors.append(np.mean(fold_errors))
    return errors


# One autoencoder that beats PCA's one linear axis on a curve, one stopped
# after an epoch from random weights, which PCA beats.
TRAINED = AutoencoderTransformer(
    1,
    hidden_layer_sizes=(32,),
    learning_rate_init=0.01,
    early_stopping=False,
    max_iter=60,
    random_state=0,
)
UNTRAINED = AutoencoderTransformer(
    1, init="random", hidden_layer_sizes=(4,), max_iter=1, random_state=0
)


@pytest.mark.parametrize("autoencoder", [TRAINED, UNTRAINED], ids=["trained", "not"])
def test_search_picks_the_lower_held_out_reconstruction_error(autoencoder):
    X = curve_data()
    cv = KFold(3, shuffle=True, random_state=0)
    candidates = [PCA(1), autoencoder]
    errors = held_out_errors(candidates, X, cv)
    search = GridSearchCV(
        Pipeline([("reduce", PCA(1))]),
        {"reduce": candidates},
        scoring=reconstruction_scorer,
        cv=cv,
    ).fit(X)
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], -np.asarray(errors), rtol=1e-6
    )
    assert search.best_index_ == int(np.argmin(errors))
    if autoencoder is UNTRAINED:
        # By score, PCA's log-likelihood loses to any squared error.
        by_score = GridSearchCV(
            Pipeline([("reduce", PCA(1))]), {"reduce": candidates}, cv=cv
        ).fit(X)
        assert by_score.best_index_ == 1 != search.best_index_


def test_agrees_with_pca_reconstruction():
    X = low_rank_data(150, 12, rank=4, noise=0.3)
    pca = PCA(3).fit(X[:100])
    X_back = pca.inverse_transform(pca.transform(X[100:]))
    expected = -np.mean((X[100:] - X_back) ** 2)
    assert reconstruction_scorer(pca, X[100:]) == pytest.approx(expected, rel=1e-12)
    # A PCA search that differs from PCA's own score, a log-likelihood.
    assert reconstruction_scorer(pca, X[100:]) != pytest.approx(pca.score(X[100:]))


def test_pipeline_is_scored_in_its_input_units():
    X = low_rank_data(120, 6, rank=2, noise=0.1) * [1, 10, 100, 1, 10, 100]
    pipeline = make_pipeline(StandardScaler(), PCA(2)).fit(X)
    X_back = pipeline.inverse_transform(pipeline.transform(X))
    assert reconstruction_scorer(pipeline, X) == pytest.approx(
        -np.mean((X - X_back) ** 2), rel=1e-12
    )


def test_equals_skae_score(fitted_small, small_data):
    assert reconstruction_scorer(fitted_small, small_data) == pytest.approx(
        fitted_small.score(small_data), rel=1e-6
    )


def test_kernel_pca_with_inverse_in_cross_validate():
    X = curve_data(90)
    kernel_pca = KernelPCA(2, kernel="rbf", fit_inverse_transform=True)
    result = cross_validate(kernel_pca, X, scoring=reconstruction_scorer, cv=3)
    assert np.all(result["test_score"] < 0)


def test_sparse_input_is_scored_as_dense():
    X = sp.random(60, 20, density=0.2, format="csr", random_state=0)
    pca = PCA(3).fit(X.toarray())
    assert reconstruction_scorer(pca, X) == pytest.approx(
        reconstruction_scorer(pca, X.toarray()), rel=1e-12
    )


def test_estimator_without_inverse_is_refused():
    X = low_rank_data(40, 4, rank=2, noise=0.1)
    model = make_pipeline(PCA(2), LogisticRegression()).fit(X, X[:, 0] > 0)
    with pytest.raises(TypeError, match="needs a transformer with transform and"):
        reconstruction_scorer(model, X)
