# SPDX-License-Identifier: BSD-3-Clause
"""Compare reducers on held-out data: reconstruction error, speed, useful codes.

This sits above the estimators: it fits any scikit-learn transformer that has
``n_components`` and ``inverse_transform`` (PCA, AutoencoderTransformer, ...)
and measures it the same way. Nothing in the core imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length

from skae._autoencoder import AutoencoderTransformer
from skae._checks import is_positive_int

Progress = Callable[[int, int, str], None]
Estimators = Mapping[str, Any] | Sequence[tuple[str, Any]]

DEFAULT_N_COMPONENTS = (2, 4, 8, 16, 32)
# Share of the samples held out for testing: train_test_split's default, large
# enough for a stable test error on a few hundred samples.
DEFAULT_TEST_SIZE = 0.25
COLUMNS = (
    "method",
    "n_components",
    "test_mse",
    "test_r2",
    "fit_seconds",
    "transform_seconds",
)
ACCURACY_COLUMN = "test_accuracy"
TIMING_COLUMNS = ("fit_seconds", "transform_seconds")


@dataclass(frozen=True)
class Comparison:
    """The table of a comparison, with what it was computed from.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (method, n_components); see :func:`compare`.
    models : dict of (str, int) to estimator
        The fitted estimator of each row, keyed by (method, n_components).
    X_train, X_test : ndarray
        The split the estimators were fitted and scored on.
    y_train, y_test : ndarray or None
        The matching labels, when y was given.
    """

    table: pd.DataFrame
    models: dict[tuple[str, int], Any]
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    # Rows of the fits asked for a share of variance, with their code sizes.
    variance_table: pd.DataFrame | None = None


def compare(
    X: npt.ArrayLike,
    y: npt.ArrayLike | None = None,
    *,
    n_components: Sequence[int] = DEFAULT_N_COMPONENTS,
    estimators: Estimators | None = None,
    classifier: Any = None,
    test_size: float = DEFAULT_TEST_SIZE,
    random_state: int | np.random.RandomState | None = None,
    progress: Progress | None = None,
    variance: float | None = None,
) -> pd.DataFrame:
    """Compare dimensionality reducers on held-out reconstruction error.

    X is split into a training and a test part. For each estimator and each
    code size k in ``n_components``, a clone with ``n_components=k`` is fitted
    on the training part, then the test part is encoded and decoded. When y is
    given, a classifier is trained on the training codes and scored on the
    test codes, a measure of how much of the label information the codes keep.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data to reduce.

    y : array-like of shape (n_samples,), default=None
        Labels. When given, the table gets a ``test_accuracy`` column.

    n_components : sequence of int, default=(2, 4, 8, 16, 32)
        Code sizes to compare, each at most the number of features and of
        training samples.

    estimators : dict or list of (str, estimator) tuples, default=None
        The methods to compare, by name: scikit-learn transformers with an
        ``n_components`` parameter and ``inverse_transform``. None compares
        ``PCA()`` with ``AutoencoderTransformer()``, named 'PCA' and
        'autoencoder'. Estimators whose ``random_state`` is None get one drawn
        from ``random_state``.

    classifier : classifier, default=None
        Fitted on the training codes and scored (accuracy) on the test codes
        when y is given. None uses a logistic regression on standardised codes.

    test_size : float, default=0.25
        Share of the samples held out for testing.

    random_state : int, RandomState instance or None, default=None
        Seeds the split and the estimators left without a seed. Pass an int
        for the same table, apart from the timing columns, on every call.

    progress : callable, default=None
        Called as ``progress(n_done, n_fits, label)`` before each fit, with a
        label such as ``'autoencoder, k=8'``, and once more with
        ``n_done == n_fits`` and the label ``'done'`` at the end.

    variance : float in (0, 1), default=None
        Also fit each method with ``n_components=variance``, the way PCA and
        AutoencoderTransformer read a fraction: the smallest code that
        explains that share of the variance. These rows come last, with the
        code size each method chose in ``n_components`` and the fraction in
        a ``target_r2`` column (NaN on the other rows).

    Returns
    -------
    table : pandas.DataFrame
        One row per (method, k), in the order of ``estimators`` then
        ``n_components``, with columns ``method``, ``n_components``,
        ``test_mse`` (mean squared reconstruction error per feature, in X's
        units), ``test_r2`` (share of the test data's variance the
        reconstruction explains), ``fit_seconds``, ``transform_seconds``
        (encoding the test part) and, when y is given, ``test_accuracy``.

    See Also
    --------
    AutoencoderTransformer : The autoencoder compared by default.
    reconstruction_scorer : The same error as ``scoring=`` of a search.
    sklearn.decomposition.PCA : The linear baseline compared by default.

    Notes
    -----
    Every method is measured by its reconstruction of the test part, never by
    its own ``score``: PCA's :meth:`~sklearn.decomposition.PCA.score` is the
    average log-likelihood of the samples under probabilistic PCA, on another
    scale than skae's (minus a mean squared error). To compare reducers the
    same way inside a search or a cross-validation, pass
    :func:`reconstruction_scorer` as ``scoring``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae import AutoencoderTransformer, compare
    >>> X, y = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=5)
    >>> table = compare(
    ...     X, y, n_components=[2, 8],
    ...     estimators=[("PCA", PCA()), ("autoencoder", ae)], random_state=0,
    ... )
    >>> table[["method", "n_components"]]
            method  n_components
    0          PCA             2
    1          PCA             8
    2  autoencoder             2
    3  autoencoder             8
    >>> list(table.columns[2:])  # doctest: +NORMALIZE_WHITESPACE
    ['test_mse', 'test_r2', 'fit_seconds', 'transform_seconds',
     'test_accuracy']
    """
    comparison = run_comparison(
        X,
        y,
        n_components=n_components,
        estimators=estimators,
        classifier=classifier,
        test_size=test_size,
        random_state=random_state,
        progress=progress,
        variance=variance,
    )
    if comparison.variance_table is None:
        return comparison.table
    return pd.concat([comparison.table, comparison.variance_table], ignore_index=True)


def run_comparison(
    X: npt.ArrayLike,
    y: npt.ArrayLike | None = None,
    *,
    n_components: Sequence[int] = DEFAULT_N_COMPONENTS,
    estimators: Estimators | None = None,
    classifier: Any = None,
    test_size: float = DEFAULT_TEST_SIZE,
    random_state: int | np.random.RandomState | None = None,
    progress: Progress | None = None,
    variance: float | None = None,
) -> Comparison:
    """Run :func:`compare` and keep the split and the fitted models too.

    Parameters and their meaning are those of :func:`compare`.

    Returns
    -------
    comparison : Comparison
        The table, the fitted model of each row, and the train/test split.
    """
    X = check_array(X, dtype=[np.float64, np.float32])
    if y is not None:
        y = np.asarray(y)
        check_consistent_length(X, y)
    methods = _check_estimators(estimators)
    rng = check_random_state(random_state)
    split_seed, model_seed = (int(seed) for seed in rng.randint(2**31 - 1, size=2))
    if y is None:
        X_train, X_test = train_test_split(
            X, test_size=test_size, random_state=split_seed
        )
        y_train = y_test = None
    else:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=split_seed
        )
    ks = check_n_components(n_components, X_train.shape)
    if variance is not None and not (isinstance(variance, Real) and 0 < variance < 1):
        raise ValueError(f"variance must be a float in (0, 1), got {variance!r}.")
    if classifier is None:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    requests = [*ks, *([] if variance is None else [float(variance)])]
    rows, models = [], {}
    n_fits = len(methods) * len(requests)
    for name, template in methods.items():
        for request in requests:
            if progress is not None:
                label = f"k={request}" if request in ks else f"R²≥{request}"
                progress(len(rows), n_fits, f"{name}, {label}")
            model = _configure(template, request, model_seed)
            row, codes_test = _evaluate(model, X_train, X_test)
            if y is not None:
                fitted = clone(classifier).fit(model.transform(X_train), y_train)
                row[ACCURACY_COLUMN] = float(fitted.score(codes_test, y_test))
            models[name, request] = model
            rows.append(
                {
                    "method": name,
                    "n_components": int(codes_test.shape[1]),
                    **row,
                    "target_r2": np.nan if request in ks else request,
                }
            )
    if progress is not None:
        progress(n_fits, n_fits, "done")
    columns = [*COLUMNS, ACCURACY_COLUMN] if y is not None else list(COLUMNS)
    everything = pd.DataFrame(rows)
    by_size = everything["target_r2"].isna()
    table = everything.loc[by_size, columns].reset_index(drop=True)
    variance_table = None
    if variance is not None:
        variance_table = everything.loc[~by_size, [*columns, "target_r2"]]
        variance_table = variance_table.reset_index(drop=True)
    return Comparison(table, models, X_train, X_test, y_train, y_test, variance_table)


def _evaluate(
    model: Any, X_train: np.ndarray, X_test: np.ndarray
) -> tuple[dict[str, float], np.ndarray]:
    """Fit on the training part, then time and score the test reconstruction.

    Returns the row's measurements and the test codes.
    """
    start = time.perf_counter()
    model.fit(X_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    codes = model.transform(X_test)
    transform_seconds = time.perf_counter() - start
    X_back = np.asarray(model.inverse_transform(codes), dtype=np.float64)
    row = {
        "test_mse": float(np.mean((X_back - X_test) ** 2)),
        # One R² for the whole matrix: 1 - SSE / SST summed over features, so
        # constant features (blank pixels) neither help nor break it.
        "test_r2": float(r2_score(X_test, X_back, multioutput="variance_weighted")),
        "fit_seconds": fit_seconds,
        "transform_seconds": transform_seconds,
    }
    return row, codes


def _configure(template: Any, k: float, seed: int) -> Any:
    model = clone(template).set_params(n_components=k)
    if "random_state" in model.get_params() and model.random_state is None:
        model.set_params(random_state=seed)
    return model


def _check_estimators(estimators: Estimators | None) -> dict[str, Any]:
    if estimators is None:
        return {"PCA": PCA(), "autoencoder": AutoencoderTransformer()}
    pairs = list(estimators.items() if isinstance(estimators, Mapping) else estimators)
    if not pairs or not all(
        isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
        for pair in pairs
    ):
        raise ValueError(
            "estimators must be a non-empty dict or list of (name, estimator) "
            f"tuples, e.g. [('PCA', PCA())], got {estimators!r}."
        )
    names = [name for name, _ in pairs]
    if len(set(names)) < len(names):
        raise ValueError(f"estimators need distinct names, got {names}.")
    for name, estimator in pairs:
        missing = [
            method
            for method in ("fit", "transform", "inverse_transform", "get_params")
            if not callable(getattr(estimator, method, None))
        ]
        if missing or "n_components" not in estimator.get_params():
            lacks = ", ".join(missing) if missing else "an n_components parameter"
            raise TypeError(
                f"estimator {name!r} ({type(estimator).__name__}) lacks {lacks}; "
                "compare needs scikit-learn transformers with n_components and "
                "inverse_transform, such as PCA or AutoencoderTransformer."
            )
    return dict(pairs)


def check_n_components(
    n_components: Sequence[int], train_shape: tuple[int, int]
) -> list[int]:
    """Validate code sizes against the shape of the training part.

    Parameters
    ----------
    n_components : sequence of int
        Code sizes to compare.

    train_shape : tuple of int
        (n_samples, n_features) of the data the estimators are fitted on.

    Returns
    -------
    ks : list of int
        The code sizes, as ints.

    Raises
    ------
    ValueError
        If a size is not a positive int, repeats, or exceeds the number of
        features or of training samples.
    """
    ks = list(np.atleast_1d(np.asarray(n_components, dtype=object)))
    if not ks or not all(is_positive_int(k) for k in ks):
        raise ValueError(
            f"n_components must be a list of positive ints, got {n_components!r}."
        )
    if len(set(ks)) < len(ks):
        raise ValueError(f"n_components has repeated values: {n_components!r}.")
    n_samples, n_features = train_shape
    limit = min(n_samples, n_features)
    too_large = [int(k) for k in ks if k > limit]
    if too_large:
        raise ValueError(
            f"n_components={too_large[0]} is too large: the training part has "
            f"{n_samples} samples and {n_features} features, so k can be at most "
            f"{limit}; choose smaller values."
        )
    return [int(k) for k in ks]
