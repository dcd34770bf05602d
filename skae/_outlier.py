# SPDX-License-Identifier: BSD-3-Clause
"""Outlier detection by reconstruction error, with scikit-learn's outlier API."""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    OutlierMixin,
    _fit_context,
    clone,
)
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from skae import _fitted_state as rules
from skae._autoencoder import AutoencoderTransformer
from skae._base import FittedState, transaction
from skae._checks import FLOAT_DTYPES
from skae._fitted_state import Field, stored_state
from skae._plain_state import plain_state, restore_state


class AutoencoderOutlierDetector(OutlierMixin, MetaEstimatorMixin, BaseEstimator):
    """Outlier detection by autoencoder reconstruction error.

    An autoencoder trained on mostly normal data reconstructs samples like
    them well and unusual samples badly. This detector fits ``estimator`` to
    X and flags as outliers the samples it reconstructs worst: the fraction
    ``contamination`` of the training data, and any new sample reconstructed
    no better than they were.

    Any skae autoencoder works as ``estimator``: dense, convolutional
    (``image_shape``), denoising (``noise``) or a
    :class:`VariationalAutoencoder`. Its parameters are tuned as
    ``estimator__<name>``, for example with
    :class:`~sklearn.model_selection.GridSearchCV` and ``scoring="roc_auc"`` on
    labelled validation data.

    Parameters
    ----------
    estimator : estimator object or None, default=None
        The autoencoder to fit, cloned before fitting. Any estimator with
        ``fit`` and ``score_samples``, where a higher score means a more
        normal sample, will do. None uses ``AutoencoderTransformer()``.

    contamination : float, default=0.1
        Expected proportion of outliers in the training data, in (0, 0.5]. It
        sets the threshold ``offset_`` on the scores: that fraction of the
        training samples scores below it.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``.

    offset_ : float
        Threshold on :meth:`score_samples`: the ``contamination`` quantile of
        the training samples' scores. ``decision_function = score_samples -
        offset_``, so samples with a negative decision are outliers.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when X has string column names.

    See Also
    --------
    AutoencoderTransformer : The autoencoder it wraps by default.
    VariationalAutoencoder : A variational autoencoder it can wrap.
    sklearn.ensemble.IsolationForest : Outlier detection by random partitions.
    sklearn.covariance.EllipticEnvelope : Outlier detection for Gaussian data.

    Notes
    -----
    Fitting is all or nothing: if it fails, an already fitted detector stays
    exactly as it was.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderOutlierDetector, AutoencoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> detector = AutoencoderOutlierDetector(
    ...     AutoencoderTransformer(n_components=4, max_iter=5, random_state=0),
    ...     contamination=0.05,
    ... )
    >>> labels = detector.fit_predict(X[y == 0])
    >>> sorted(set(labels.tolist()))
    [-1, 1]
    >>> detector.predict(X[y != 0][:5]).shape
    (5,)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
    }
    # The fitted state a model file, a pickle and a skops file store; the
    # inner estimator is stored whole, as a nested estimator.
    _state_fields: ClassVar[tuple[Field, ...]] = (
        *rules.SKLEARN_FIELDS,
        Field("estimator_", "estimator_", rules.inner_estimator),
        Field("offset_", "offset_", rules.offset),
    )
    _state_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, estimator: Any = None, *, contamination: float = 0.1) -> None:
        self.estimator = estimator
        self.contamination = contamination

    # The inner estimator validates its own parameters when it is fitted.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: npt.ArrayLike, y: object = None) -> AutoencoderOutlierDetector:
        """Fit the autoencoder to X and set the outlier threshold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, mostly normal samples.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : AutoencoderOutlierDetector
            The fitted detector.
        """
        with transaction(self) as stand_in:
            estimator = clone(self._estimator())
            X = validate_data(
                stand_in,
                X,
                dtype=FLOAT_DTYPES,
                accept_sparse=_sparse_formats(estimator),
            )
            estimator.fit(X)
            scores = _checked_scores(estimator, X)
            offset = np.percentile(scores, 100 * self.contamination)
            stand_in.estimator_ = estimator
            stand_in.offset_ = float(offset)
        return self

    def score_samples(self, X: npt.ArrayLike) -> np.ndarray:
        """Score the normality of each sample: its negative reconstruction error.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``estimator_.score_samples(X)``: for skae autoencoders, the
            negative mean squared reconstruction error of each sample. The
            lower, the more abnormal.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            reset=False,
            dtype=FLOAT_DTYPES,
            accept_sparse=_sparse_formats(self.estimator_),
        )
        return _checked_scores(self.estimator_, X)

    def decision_function(self, X: npt.ArrayLike) -> np.ndarray:
        """Score relative to the threshold; negative for outliers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """Label each sample as an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples to label.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 where ``decision_function(X) >= 0``, -1 elsewhere.
        """
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def __sklearn_tags__(self) -> Any:
        """Take sparse input when the autoencoder does (skae's all do)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = get_tags(self._estimator()).input_tags.sparse
        return tags

    def _estimator(self) -> Any:
        return AutoencoderTransformer() if self.estimator is None else self.estimator

    def __getstate__(self) -> dict[str, Any]:
        """Return the state as plain data, for pickle and ``skops.io``."""
        return plain_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a state, checked as :func:`skae.load` checks a file."""
        restore_state(self, state)

    def _get_fitted_state(self) -> FittedState:
        """Return the declared fields; the inner estimator is nested whole."""
        return FittedState(stored_state(self, self.get_params(deep=False)), {}, [])

    def _restore_fitted_state(
        self, attributes: dict[str, Any], weights: dict[str, Any]
    ) -> dict[str, Any]:
        """Nothing to rebuild: the inner estimator was loaded as it was saved."""
        if weights:
            raise ValueError("it has weights, but a detector has no network")
        return {}


def _sparse_formats(estimator: Any) -> str | bool:
    """CSR for an estimator that takes sparse input; False: it is refused here."""
    return "csr" if get_tags(estimator).input_tags.sparse else False


def _checked_scores(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Score X with the inner estimator: one finite float per sample, or raise.

    A NaN score would set a NaN threshold and flag every sample, and scores of
    another shape would reach ``predict`` unnoticed.
    """
    name = type(estimator).__name__
    scores = np.asarray(estimator.score_samples(X))
    if scores.shape != (X.shape[0],):
        raise ValueError(
            f"{name}.score_samples returned an array of shape {scores.shape} for "
            f"{X.shape[0]} samples; the detector needs one score per sample, of "
            f"shape ({X.shape[0]},)."
        )
    if scores.dtype.kind not in "biuf":
        raise ValueError(
            f"{name}.score_samples returned {scores.dtype} scores; the detector "
            "needs real numbers."
        )
    scores = scores.astype(np.float64)
    n_bad = int(np.count_nonzero(~np.isfinite(scores)))
    if n_bad:
        raise ValueError(
            f"{name}.score_samples returned NaN or infinite scores for {n_bad} of "
            f"{X.shape[0]} samples; the detector needs a finite score for every "
            "sample. Check the estimator and the data it was fitted on."
        )
    return scores
