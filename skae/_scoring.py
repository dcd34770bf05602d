# SPDX-License-Identifier: BSD-3-Clause
"""A scorer that compares any reducers with an inverse: reconstruction error.

``score`` means something else for each reducer (PCA's is an average
log-likelihood, skae's a negative squared error), so a search that puts them
side by side must score them all by one rule. This sits above the
estimators and knows them only through ``transform`` and
``inverse_transform``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.utils.validation import check_array

# Rows whose squared errors are summed at a time: a difference of all of X at
# once would take as much memory as X again (in float64).
ERROR_BATCH_SIZE = 1024


def reconstruction_scorer(estimator: Any, X: npt.ArrayLike, y: object = None) -> float:
    """Score a fitted reducer by its reconstruction of X; greater is better.

    Returns minus the mean squared error between X and
    ``estimator.inverse_transform(estimator.transform(X))``, over every entry,
    in the units of X. It applies to any fitted transformer with an
    ``inverse_transform``: :class:`~sklearn.decomposition.PCA`,
    :class:`~sklearn.decomposition.KernelPCA` with
    ``fit_inverse_transform=True``, skae's autoencoders, and a
    :class:`~sklearn.pipeline.Pipeline` of such steps, whose error is then
    measured in the units of the pipeline's input. Pass it as ``scoring=`` to
    :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_validate` and the other searches.

    A search that compares reducers needs it: each reducer's own ``score``
    measures something else. PCA's :meth:`~sklearn.decomposition.PCA.score` is
    the average log-likelihood of the samples under a probabilistic PCA model,
    in nats, while skae's ``score`` is minus the mean squared reconstruction
    error; the two are not on one scale, and a search picking by ``score``
    would pick by that difference of units. For skae's estimators alone, this
    scorer gives what their ``score`` gives.

    Read more in the :ref:`User Guide <comparing_reducers>`.

    Parameters
    ----------
    estimator : estimator object
        A fitted transformer with ``transform`` and ``inverse_transform``.

    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data to reconstruct, with numeric features.

    y : Ignored
        Not used, present for the scorer API (``scorer(estimator, X, y)``).

    Returns
    -------
    score : float
        ``-mean((X - X_reconstructed) ** 2)``, in squared units of X.

    See Also
    --------
    AutoencoderTransformer : Its ``score`` gives the same number.
    compare : Held-out error and timings of PCA and the autoencoder, k by k.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import Pipeline
    >>> from skae import AutoencoderTransformer, reconstruction_scorer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(8, hidden_layer_sizes=(16,), random_state=0)
    >>> search = GridSearchCV(
    ...     Pipeline([("reduce", PCA(8))]),
    ...     {"reduce": [PCA(8), ae.set_params(max_iter=3)]},
    ...     scoring=reconstruction_scorer,
    ...     cv=3,
    ... ).fit(X)
    >>> search.cv_results_["mean_test_score"].shape
    (2,)

    For PCA it is minus the mean squared error of PCA's own reconstruction:

    >>> import numpy as np
    >>> pca = PCA(8).fit(X)
    >>> error = np.mean((X - pca.inverse_transform(pca.transform(X))) ** 2)
    >>> bool(np.isclose(reconstruction_scorer(pca, X), -error))
    True
    """
    if not all(hasattr(estimator, name) for name in ("transform", "inverse_transform")):
        raise TypeError(
            "reconstruction_scorer needs a transformer with transform and "
            f"inverse_transform, got {type(estimator).__name__}; in a Pipeline, "
            "every step must have inverse_transform."
        )
    X_reconstructed = np.asarray(
        estimator.inverse_transform(estimator.transform(X)), dtype=np.float64
    )
    X = check_array(
        X,
        accept_sparse="csr",
        dtype=[np.float64, np.float32],
        ensure_all_finite=False,
    )
    if X_reconstructed.shape != X.shape:
        raise ValueError(
            f"{type(estimator).__name__} reconstructs X of shape {X.shape} as "
            f"shape {X_reconstructed.shape}; reconstruction_scorer needs an "
            "inverse_transform back to X's features."
        )
    squared_error = 0.0
    for start in range(0, X.shape[0], ERROR_BATCH_SIZE):
        rows = X[start : start + ERROR_BATCH_SIZE]
        if sp.issparse(rows):
            rows = rows.toarray()
        difference = rows - X_reconstructed[start : start + rows.shape[0]]
        squared_error += float(np.einsum("ij,ij->", difference, difference))
    return -squared_error / max(X.shape[0] * X.shape[1], 1)
