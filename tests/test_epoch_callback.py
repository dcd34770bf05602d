"""epoch_callback: watch a fit epoch by epoch, and stop it on your own terms."""

import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import (
    AutoencoderTransformer,
    EpochReport,
    VariationalAutoencoder,
    epoch_callback,
)
from tests.helpers import assert_unchanged, low_rank_data, snapshot


@pytest.fixture(scope="module")
def X():
    return low_rank_data(200, 8, rank=3, noise=0.1)


def small(cls=AutoencoderTransformer, **params):
    settings = {"n_components": 2, "hidden_layer_sizes": (8,), "random_state": 0}
    return cls(**{**settings, **params})


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VariationalAutoencoder])
@pytest.mark.parametrize("early_stopping", [True, False])
def test_the_callback_sees_every_epoch_as_the_fitted_curves_record_it(
    X, cls, early_stopping
):
    reports = []
    with epoch_callback(reports.append):
        model = small(cls, max_iter=6, early_stopping=early_stopping).fit(X)
    assert all(isinstance(report, EpochReport) for report in reports)
    judged = [report for report in reports if report.validation_score is not None]
    # With held-out rows, the best judged epoch goes on over every row.
    kept = [report for report in reports if report.validation_score is None]
    if early_stopping:
        assert [r.validation_score for r in judged] == model.validation_scores_
        assert [r.epoch for r in judged] == list(range(1, len(judged) + 1))
        # The curve kept: the judged epochs up to the best, then every row's
        # (all the judged epochs where the start is kept).
        best = kept[0].epoch - 1 if kept else len(judged)
        kept = judged[:best] + kept
    else:
        assert not judged
    assert [report.epoch for report in kept] == list(range(1, model.n_iter_ + 1))
    assert [report.loss for report in kept] == model.loss_curve_


def test_watching_does_not_change_the_fit(X):
    plain = small(max_iter=5).fit(X)
    with epoch_callback(lambda report: None):
        watched = small(max_iter=5).fit(X)
    np.testing.assert_array_equal(watched.transform(X), plain.transform(X))


@pytest.mark.parametrize("early_stopping", [True, False])
def test_a_true_return_stops_after_that_epoch_without_a_warning(X, early_stopping):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with epoch_callback(lambda report: report.epoch == 4):
            model = small(max_iter=50, early_stopping=early_stopping).fit(X)
    if not early_stopping:
        assert model.n_iter_ == 4
    else:
        # Four judged epochs; the best of them then goes on over every row.
        assert len(model.validation_scores_) == 4
        # The PCA start competes too, so the kept score may beat every epoch's.
        assert model.best_validation_score_ >= max(model.validation_scores_)


def test_stopping_keeps_the_best_held_out_epoch(X):
    """The weights kept are the best epoch's, as a fit ending there keeps them."""
    settings = {
        "early_stopping": True,
        "init": "random",
        "learning_rate": "constant",  # the first epochs do not depend on max_iter
        "learning_rate_init": 0.05,
        "batch_size": 8,
        "n_iter_no_change": 50,
    }
    with epoch_callback(lambda report: report.epoch == 8):
        stopped = small(max_iter=50, **settings).fit(X)
    best = int(np.argmax(stopped.validation_scores_)) + 1
    assert best < 8, "the last epoch must not be the best, or this proves nothing"
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    ended_there = small(max_iter=best, **settings).fit(X)
    np.testing.assert_array_equal(stopped.transform(X), ended_there.transform(X))


def test_an_exception_in_the_callback_leaves_a_fitted_model_unchanged(X):
    model = small(max_iter=3, warm_start=True).fit(X)
    before = snapshot(model)

    def fail(report):
        raise RuntimeError("the dashboard is down")

    with epoch_callback(fail), pytest.raises(RuntimeError, match="dashboard"):
        model.fit(X)
    assert_unchanged(model, before)


def test_partial_fit_reports_its_one_epoch(X):
    reports = []
    model = small()
    with epoch_callback(reports.append):
        model.partial_fit(X)
        model.partial_fit(X)
    assert [report.epoch for report in reports] == [1, 1]
    assert [report.loss for report in reports] == model.loss_curve_


def test_fits_inside_pipelines_and_searches_are_seen(X):
    reports = []
    search = GridSearchCV(
        make_pipeline(StandardScaler(), small(max_iter=3)),
        {"autoencodertransformer__n_components": [1, 2]},
        cv=2,
    )
    with epoch_callback(reports.append):
        search.fit(X)
    # Two sizes x two folds, then the refit: five fits of three epochs.
    assert len(reports) == 5 * 3


def test_blocks_nest_and_end(X):
    outer, inner = [], []
    with epoch_callback(outer.append):
        with epoch_callback(inner.append):
            small(max_iter=2).fit(X)
        small(max_iter=3).fit(X)
    small(max_iter=2).fit(X)
    assert len(inner) == 2 and len(outer) == 5


def test_fits_in_other_threads_are_not_seen(X):
    reports = []
    with epoch_callback(reports.append):
        thread = threading.Thread(target=lambda: small(max_iter=2).fit(X))
        thread.start()
        thread.join()
    assert reports == []


def test_a_callback_must_be_callable():
    with pytest.raises(TypeError, match="callback must be callable"):
        with epoch_callback("print"):
            pass
