"""Rows that judge training: copies of a row never on both sides."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer
from skae._folds import copy_groups, grouped_folds, grouped_holdout


def test_rows_that_all_differ_form_no_groups():
    X = np.random.default_rng(0).normal(size=(200, 5))
    assert copy_groups(X) is None


def test_identical_rows_share_a_group_and_only_they():
    X = np.random.default_rng(0).normal(size=(50, 5))
    near = X[:1].copy()
    near[0, 4] = np.nextafter(near[0, 4], np.inf)  # the last bit differs
    groups = copy_groups(np.vstack([np.repeat(X, 3, axis=0), near]))
    assert groups is not None
    np.testing.assert_array_equal(groups[:-1], np.repeat(groups[:-1:3], 3))
    assert len(np.unique(groups)) == 51


def test_dense_and_sparse_rows_and_signed_zeros_group_alike():
    X = np.random.default_rng(1).normal(size=(40, 6))
    X[np.abs(X) < 1] = 0.0
    X = np.vstack([X, X[:5]])
    X[-1, X[-1] == 0] = -0.0
    dense = copy_groups(X)
    np.testing.assert_array_equal(dense, copy_groups(sp.csr_matrix(X)))
    np.testing.assert_array_equal(dense[-5:], dense[:5])


@pytest.mark.parametrize("copies", [2, 3, 7])
def test_holdout_and_folds_keep_each_groups_copies_together(copies):
    rng = np.random.default_rng(copies)
    groups = np.repeat(np.arange(300), rng.integers(1, copies + 1, size=300))
    order = rng.permutation(groups.size)
    n_valid = groups.size // 10
    train, valid = grouped_holdout(order, n_valid, groups)
    assert not set(groups[train]) & set(groups[valid])
    assert np.array_equal(
        np.sort(np.concatenate([train, valid])), np.arange(groups.size)
    )
    assert n_valid - copies < valid.size <= n_valid
    folds = grouped_folds(order, 5, groups)
    assert len(folds) == 5
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(groups.size))
    for i, fold in enumerate(folds):
        others = np.concatenate([f for j, f in enumerate(folds) if j != i])
        assert not set(groups[fold]) & set(groups[others])
        assert abs(fold.size - groups.size / 5) <= copies


def test_rows_that_cannot_be_split_by_copies_fall_back():
    order = np.random.default_rng(0).permutation(100)
    one_row_many_times = np.zeros(100, dtype=int)
    assert grouped_holdout(order, 10, one_row_many_times) is None
    assert grouped_folds(order, 5, one_row_many_times) is None
    # Three quarters of the rows are one row: its fold would leave a quarter.
    mostly_one_row = np.r_[np.zeros(75, dtype=int), np.arange(1, 26)]
    assert grouped_folds(order, 5, mostly_one_row) is None


@pytest.mark.parametrize("n_rows", [150, 569])
def test_oversampled_training_rows_do_not_make_the_fit_worse_than_pca(n_rows):
    """Training rows repeated three times, test rows once (oversampling).

    With copies on both sides of the holdout (or folds), memorising the
    training rows passed as a gain, and the fit ended worse than PCA.
    """
    X = load_breast_cancer().data[:n_rows]
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train = np.repeat(scaler.transform(X_train), 3, axis=0)
    X_test = scaler.transform(X_test)

    def test_error(model):
        return np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)

    pca = PCA(n_components=5).fit(X_train)
    model = AutoencoderTransformer(n_components=5, random_state=0).fit(X_train)
    assert test_error(model) <= 1.001 * test_error(pca)
