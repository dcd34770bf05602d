"""skae.compare: one row per (method, k), measured on a held-out split."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.manifold import Isomap
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, compare
from skae._compare import TIMING_COLUMNS, run_comparison


@pytest.fixture(scope="module")
def digits_subset():
    X, y = load_digits(return_X_y=True)
    return X[:240] / 16.0, y[:240]


def tiny_estimators(random_state=None):
    return [
        ("PCA", PCA()),
        (
            "autoencoder",
            AutoencoderTransformer(
                hidden_layer_sizes=(16,), max_iter=3, random_state=random_state
            ),
        ),
    ]


def test_table_has_one_row_per_method_and_k(digits_subset):
    X, y = digits_subset
    table = compare(
        X, y, n_components=[2, 8], estimators=tiny_estimators(), random_state=0
    )
    assert list(table.columns) == [
        "method",
        "n_components",
        "test_mse",
        "test_r2",
        "fit_seconds",
        "transform_seconds",
        "test_accuracy",
    ]
    assert table[["method", "n_components"]].values.tolist() == [
        ["PCA", 2],
        ["PCA", 8],
        ["autoencoder", 2],
        ["autoencoder", 8],
    ]
    assert (table["test_mse"] > 0).all()
    assert (table["test_r2"] < 1).all()
    assert table["test_accuracy"].between(0, 1).all()
    for column in TIMING_COLUMNS:
        assert (table[column] > 0).all()


def test_no_accuracy_column_without_labels(digits_subset):
    X, _ = digits_subset
    table = compare(X, n_components=[3], estimators=[("PCA", PCA())], random_state=0)
    assert "test_accuracy" not in table.columns
    assert len(table) == 1


def test_metrics_match_a_direct_computation(digits_subset):
    """The PCA row equals PCA fitted and scored by hand on the same split."""
    X, y = digits_subset
    result = run_comparison(
        X, y, n_components=[5], estimators=[("PCA", PCA())], random_state=3
    )
    assert len(result.X_train) + len(result.X_test) == len(X)
    assert len(result.X_test) == 60  # test_size=0.25
    pca = PCA(n_components=5).fit(result.X_train)
    X_back = pca.inverse_transform(pca.transform(result.X_test))
    row = result.table.iloc[0]
    assert row["test_mse"] == pytest.approx(np.mean((X_back - result.X_test) ** 2))
    total = np.sum((result.X_test - result.X_test.mean(axis=0)) ** 2)
    assert row["test_r2"] == pytest.approx(
        1 - np.sum((X_back - result.X_test) ** 2) / total
    )
    assert row["test_r2"] == pytest.approx(
        r2_score(result.X_test, X_back, multioutput="variance_weighted")
    )


def test_pca_error_never_grows_with_k(digits_subset):
    X, _ = digits_subset
    table = compare(
        X, n_components=[1, 2, 4, 8, 16, 32], estimators={"PCA": PCA()}, random_state=0
    )
    assert np.all(np.diff(table["test_mse"]) <= 1e-12)
    assert table["test_r2"].is_monotonic_increasing


def test_same_seed_same_table(digits_subset):
    X, y = digits_subset

    def run(seed):
        table = compare(
            X, y, n_components=[2, 4], estimators=tiny_estimators(), random_state=seed
        )
        return table.drop(columns=list(TIMING_COLUMNS))

    first = run(7)
    pd.testing.assert_frame_equal(first, run(7))
    # Another seed splits differently, so even PCA's error changes.
    assert not np.allclose(first["test_mse"], run(8)["test_mse"])


def test_unseeded_estimators_get_a_seed_from_random_state(digits_subset):
    X, _ = digits_subset
    result = run_comparison(
        X,
        n_components=[2],
        estimators=[
            ("unseeded", AutoencoderTransformer(hidden_layer_sizes=(4,), max_iter=1)),
            (
                "seeded",
                AutoencoderTransformer(
                    hidden_layer_sizes=(4,), max_iter=1, random_state=5
                ),
            ),
        ],
        random_state=0,
    )
    assert isinstance(result.models["unseeded", 2].random_state, int)
    assert result.models["seeded", 2].random_state == 5
    assert result.models["unseeded", 2].n_components == 2


def test_other_transformers_and_classifier(digits_subset):
    X, y = digits_subset
    table = compare(
        X,
        y,
        n_components=[4],
        estimators={"SVD": TruncatedSVD(), "PCA": PCA()},
        classifier=KNeighborsClassifier(n_neighbors=3),
        random_state=0,
    )
    assert table["method"].tolist() == ["SVD", "PCA"]
    assert table["test_accuracy"].between(0, 1).all()


def test_progress_is_reported_before_each_fit(digits_subset):
    X, _ = digits_subset
    calls = []
    compare(
        X,
        n_components=[2, 3],
        estimators=[("PCA", PCA()), ("SVD", TruncatedSVD())],
        random_state=0,
        progress=lambda *args: calls.append(args),
    )
    assert calls == [
        (0, 4, "PCA, k=2"),
        (1, 4, "PCA, k=3"),
        (2, 4, "SVD, k=2"),
        (3, 4, "SVD, k=3"),
        (4, 4, "done"),
    ]


@pytest.mark.parametrize(
    "n_components, match",
    [
        ([65], "n_components=65 is too large.*at most 64"),
        ([0], "positive ints"),
        ([2, 2], "repeated"),
        (["2"], "positive ints"),
        ([], "positive ints"),
    ],
)
def test_bad_n_components(digits_subset, n_components, match):
    X, _ = digits_subset
    with pytest.raises(ValueError, match=match):
        compare(X, n_components=n_components, estimators={"PCA": PCA()})


def test_k_limited_by_training_samples():
    X = np.random.RandomState(0).normal(size=(8, 20))
    with pytest.raises(ValueError, match=r"6 samples and 20 features.*at most 6"):
        compare(X, n_components=[7], estimators={"PCA": PCA()})


@pytest.mark.parametrize(
    "estimators, error, match",
    [
        ({"scaler": StandardScaler()}, TypeError, "lacks an n_components parameter"),
        ({"isomap": Isomap()}, TypeError, "lacks inverse_transform"),
        ([PCA()], ValueError, r"list of \(name, estimator\) tuples"),
        ([], ValueError, "non-empty"),
        ([("a", PCA()), ("a", PCA())], ValueError, "distinct names"),
    ],
)
def test_bad_estimators(digits_subset, estimators, error, match):
    X, _ = digits_subset
    with pytest.raises(error, match=match):
        compare(X, n_components=[2], estimators=estimators)


def test_labels_must_match_samples(digits_subset):
    X, y = digits_subset
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        compare(X, y[:-1], n_components=[2], estimators={"PCA": PCA()})


def test_variance_rows_report_each_methods_code_size():
    X, y = load_digits(return_X_y=True)
    settings = {
        "n_components": [2],
        "estimators": [
            ("PCA", PCA()),
            ("autoencoder", AutoencoderTransformer(max_iter=3)),
        ],
        "random_state": 0,
        "variance": 0.8,
    }
    table = compare(X, y, **settings)
    assert table["target_r2"].isna().tolist() == [True, True, False, False]
    comparison = run_comparison(X, y, **settings)
    pca_size, ae_size = comparison.variance_table["n_components"]
    assert pca_size == comparison.models["PCA", 0.8].n_components_
    assert ae_size == comparison.models["autoencoder", 0.8].n_components_
    # The autoencoder starts at PCA's solution: it never needs more components.
    assert 1 <= ae_size <= pca_size
    pd.testing.assert_frame_equal(
        table.drop(columns=["fit_seconds", "transform_seconds"]).iloc[2:],
        comparison.variance_table.drop(
            columns=["fit_seconds", "transform_seconds"]
        ).set_index(pd.RangeIndex(2, 4)),
    )


@pytest.mark.parametrize("variance", [0, 1, 1.5, "0.9"])
def test_variance_must_be_a_fraction(digits, variance):
    with pytest.raises(ValueError, match="variance must be a float in"):
        compare(digits[0], n_components=[2], variance=variance)
