# SPDX-License-Identifier: BSD-3-Clause
"""The scikit-learn face every skae autoencoder shares.

:class:`BaseAutoencoder` owns what the variants have in common: validation,
the parameters they share, ``fit`` as prepare -> run -> record, inference in
batches, the fitted state a model file stores, and the tags. A variant
(:class:`~skae.AutoencoderTransformer`, :class:`~skae.VariationalAutoencoder`)
fills in two points: the network an architecture describes
(:meth:`BaseAutoencoder._build_network`) and the terms its training loss adds
(:meth:`BaseAutoencoder._loss_terms`), and declares its own parameters.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from numbers import Integral
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from skae import _fitted_state as rules
from skae._checks import FLOAT_DTYPES
from skae._data import (
    INFERENCE_BATCH_SIZE,
    batch_bounds,
    check_input_range,
    map_batches,
    resolve_device,
    resolve_precision,
    to_tensor,
)
from skae._fitted_state import Field, named, stored_state
from skae._fitting import FitOutcome, FitPlan, Fold, fit_planned
from skae._folds import copy_groups, grouped_folds, grouped_holdout
from skae._inference import finite_output, inference_module
from skae._networks import (
    AutoencoderNet,
    LossTerms,
    RowSquaredError,
    load_weights,
)
from skae._parameters import (
    ARCHITECTURE_PARAMS,
    AUTO_BATCH_SIZE,
    AUTO_MAX_EPOCHS,
    AUTO_MIN_EPOCHS,
    AUTO_RELATIVE_TOL,
    AUTO_STEPS,
    CV_FOLDS,
    MIN_CV_ROWS,
    MIN_HOLDOUT_ROWS,
    SHARED_CONSTRAINTS,
)
from skae._plain_state import plain_state, restore_state
from skae._progress import progress_wanted
from skae._sizes import check_network_size
from skae._sparse import canonical_csr, dense_rows, is_sparse, value_range
from skae._standardization import Standardization
from skae._threads import (
    choose_threads,
    torch_thread_budget,
)
from skae._training import (
    TrainingConfig,
    optimizer_state_to_cpu,
)


class FittedState(NamedTuple):
    """What a model file stores of a fitted estimator, as the estimator says.

    ``attributes`` are data (numbers, strings, arrays, nested estimators);
    ``weights`` the network's ``state_dict``; ``modules`` the names of the
    torch modules that :meth:`BaseAutoencoder._restore_fitted_state` rebuilds
    from the two.
    """

    attributes: dict[str, Any]
    weights: dict[str, torch.Tensor]
    modules: list[str]


class BaseAutoencoder(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class of skae's autoencoders. Do not use it directly.

    Subclasses declare their parameters (``__init__`` and
    ``_parameter_constraints``, built on :data:`SHARED_CONSTRAINTS`) and
    implement :meth:`_build_network` and :meth:`_loss_terms`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = SHARED_CONSTRAINTS
    # The fitted state a model file, a pickle and a skops file store, by the
    # names they store it under; a variant that adds a fitted attribute adds
    # its field. The modules are not stored: they are rebuilt from the
    # architecture and the weights.
    _state_fields: ClassVar[tuple[Field, ...]] = (
        *rules.SKLEARN_FIELDS,
        Field("mean_", "mean_", rules.mean),
        Field("scale_", "scale_", rules.scale),
        Field("architecture", "_architecture", rules.rebuilt),
        Field("n_code_columns", "_n_features_out", rules.code_width),
        Field("n_components_", "n_components_", rules.positive_int),
        Field("solver_state", "_optimizer_state", rules.optimizer_state),
        Field("n_iter_", "n_iter_", rules.positive_int),
        Field("loss_curve_", "loss_curve_", rules.loss_curve),
        Field("validation_scores_", "validation_scores_", rules.validation_scores),
        Field(
            "best_validation_score_",
            "best_validation_score_",
            rules.best_validation_score,
        ),
        Field("best_loss_", "best_loss_", rules.best_loss),
        # None: measured by no fit (partial_fit's, or skae 0.1.0's files).
        Field(
            "reconstruction_r2_",
            "reconstruction_r2_",
            rules.reconstruction_r2,
            default=None,
        ),
        Field(
            "component_importances_",
            "component_importances_",
            rules.component_importances,
            default=None,
        ),
    )
    _state_modules: ClassVar[tuple[str, ...]] = ("_network", "encoder_", "decoder_")

    # -- what a variant fills in ------------------------------------------------

    @abstractmethod
    def _build_network(
        self, architecture: dict[str, Any], n_features: int, n_components: int
    ) -> AutoencoderNet:
        """Build the untrained network ``architecture`` describes.

        ``architecture`` holds the values of :data:`ARCHITECTURE_PARAMS` this
        class has; the network must not depend on anything else, so that a
        model file's architecture rebuilds it.
        """

    @abstractmethod
    def _loss_terms(self) -> LossTerms:
        """Say what the training loss adds to reconstruction, from the parameters."""

    def _starts_from_pca(self, architecture: dict[str, Any]) -> bool:
        """Whether the network ``architecture`` describes starts at PCA's solution."""
        return False

    def _allows_overcomplete_code(self) -> bool:
        """Whether a term of the loss keeps a code wider than X from copying X."""
        return self.noise is not None

    def _reconstruction_judges(self) -> bool:
        """Whether held-out reconstruction error may stop training and choose.

        False where the loss trades reconstruction for something held-out
        rows do not measure: choosing by it would undo what was asked for.
        """
        return True

    # -- public API ---------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: npt.ArrayLike, y: object = None) -> BaseAutoencoder:
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse X (any SciPy format) is made dense one batch
            at a time, so memory grows with its non-zeros, not with
            n_samples x n_features; the fit is the one dense X would give.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        continuing = self.warm_start and hasattr(self, "encoder_")
        with transaction(self) as stand_in:
            X = _validate_training_data(stand_in, X, reset=not continuing)
            stand_in._train(X, continuing=continuing, incremental=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: npt.ArrayLike, y: object = None) -> BaseAutoencoder:
        """Train for one epoch on X, continuing from the current weights.

        The first call fits the input standardisation on X and builds the
        network; later calls keep both and resume the optimiser's state, so a
        data set too large for memory can be streamed in chunks, as with
        :class:`~sklearn.decomposition.IncrementalPCA`. Early stopping does not
        apply.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        continuing = hasattr(self, "encoder_")
        if continuing:
            # _fit_context validates only a first partial_fit; set_params may
            # have changed a parameter since.
            self._validate_params()
        with transaction(self) as stand_in:
            X = _validate_training_data(stand_in, X, reset=not continuing)
            stand_in._train(X, continuing=continuing, incremental=True)
        return self

    def transform(self, X: npt.ArrayLike) -> np.ndarray:
        """Encode X into codes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Codes, with the dtype of X (float32 or float64).
        """
        check_is_fitted(self)
        X = self._validate_for_inference(X)
        return self._map(self.encoder_, X, self._n_features_out)

    def inverse_transform(self, X: npt.ArrayLike) -> np.ndarray:
        """Decode codes back into the input space, in the input's units.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            Reconstructions, with the dtype of the codes.
        """
        check_is_fitted(self)
        # NaN and infinity are refused batch by batch in _map.
        X = check_array(
            X, dtype=FLOAT_DTYPES, ensure_all_finite=False, accept_sparse="csr"
        )
        if X.shape[1] != self._n_features_out:
            raise ValueError(
                f"inverse_transform expects {self._n_features_out} columns "
                f"(n_components={self._n_features_out}), got {X.shape[1]}."
            )
        return self._map(self.decoder_, X, self.n_features_in_)

    def score_samples(self, X: npt.ArrayLike) -> np.ndarray:
        """Negative mean squared reconstruction error of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-mean((x - inverse_transform(transform(x))) ** 2)`` per row, in
            squared input units; higher is better.
        """
        check_is_fitted(self)
        X = self._validate_for_inference(X)
        errors = self._map(RowSquaredError(self.encoder_, self.decoder_), X, 1)
        return -errors.ravel().astype(np.float64)

    def score(self, X: npt.ArrayLike, y: object = None) -> float:
        """Negative mean squared reconstruction error of X; higher is better.

        This lets :class:`~sklearn.model_selection.GridSearchCV` tune the
        autoencoder without labels. It is not comparable with PCA's
        :meth:`~sklearn.decomposition.PCA.score`, which is the average
        log-likelihood of the samples under probabilistic PCA: a search that
        compares skae with PCA (or any other reducer) must score all of them
        with :func:`~skae.reconstruction_scorer`, which gives this same number
        for skae's estimators.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self) -> Any:
        """Declare that transform keeps float32 and float64 inputs' dtype.

        Binary cross-entropy refuses negative input (and input above 1).
        SciPy sparse input is accepted.
        """
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.positive_only = self.loss == "binary_crossentropy"
        tags.input_tags.sparse = True
        return tags

    # -- fitted state, as a model file stores it -----------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """Return the state as plain data: weights as arrays, no torch object.

        What pickle, :func:`copy.deepcopy` and ``skops.io`` store;
        ``__setstate__`` rebuilds the network and checks the state as
        :func:`skae.load` does.
        """
        return plain_state(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the network from a plain state; raise ValueError if it is invalid."""
        restore_state(self, state)

    def _get_fitted_state(self) -> FittedState:
        """Return the declared fields of the fitted state, and the network's weights.

        The fields of :attr:`_state_fields` by name, and the weights from which
        :meth:`_restore_fitted_state` rebuilds the modules of
        :attr:`_state_modules`. An unfitted estimator has no weights
        (set_output's setting may still be there).
        """
        attributes = stored_state(self, self.get_params(deep=False))
        if not hasattr(self, "_network"):
            return FittedState(attributes, {}, [])
        modules = sorted(self._state_modules)
        return FittedState(attributes, self._network.state_dict(), modules)

    def _restore_fitted_state(
        self, attributes: dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> dict[str, Any]:
        """Rebuild the network of a saved state and install it; return what it derived.

        ``attributes`` are the stored fields, by name; what was derived is
        returned by name too. The network is built from the saved architecture
        on torch's "meta" device, which allocates nothing, and the saved
        tensors become its weights after their names, shapes, dtypes and
        values are checked. The caller checks the other fields against the
        ones derived here, then sets them. Raises ValueError or TypeError
        saying what is wrong.
        """
        try:
            architecture = attributes["architecture"]
            n_features = attributes["n_features_in_"]
            n_components = attributes["n_code_columns"]
            mean, scale = attributes["mean_"], attributes["scale_"]
        except KeyError as exc:
            raise ValueError(f"the fitted attribute {exc} is missing") from None
        expected = sorted(self._architecture_params())
        if isinstance(architecture, dict) and sorted(architecture) != expected:
            raise ValueError(
                f"its architecture sets {sorted(architecture)}, where "
                f"{type(self).__name__} has {expected}"
            )
        if not (
            isinstance(architecture, dict)
            and type(n_features) is int
            and type(n_components) is int
            and n_components > 0
            and isinstance(mean, np.ndarray)
            and mean.shape == (n_features,)
            and isinstance(scale, float)
        ):
            raise ValueError("its network architecture or input scaling is invalid")
        try:
            type(self)(**architecture)._validate_params()
            # Built on the meta device, the network draws nothing from torch's
            # random generators: loading leaves them alone, and it takes no
            # turn with fits in other threads.
            with torch.device("meta"):
                network = self._build_network(architecture, n_features, n_components)
        except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
            raise ValueError(f"its architecture is invalid ({exc})") from None
        load_weights(network, weights)
        before = set(vars(self))
        self._install_network(
            network, Standardization(mean, scale), n_components, architecture
        )
        added = set(vars(self)) - before
        return named(type(self), {name: vars(self)[name] for name in added})

    # -- fit: plan -> run -> record -------------------------------------------------

    def _train(self, X: np.ndarray, *, continuing: bool, incremental: bool) -> None:
        """Train on validated X and, only when that succeeds, set fitted attributes."""
        if not continuing:
            batch_size = (
                AUTO_BATCH_SIZE if self.batch_size == "auto" else self.batch_size
            )
            check_network_size(
                self._build_network,
                self._architecture_params(),
                *X.shape,
                batch_size,
                resolve_device(self.device),
            )
            self._check_code_size(X.shape[1])
        plan = self._plan_fit(X, continuing=continuing, incremental=incremental)
        self._record_fit(plan, fit_planned(plan))

    def _check_code_size(self, n_features: int) -> None:
        """Refuse a code wider than X that nothing keeps from copying X, as PCA does."""
        n_components = self.n_components
        if (
            isinstance(n_components, Integral)
            and n_components > n_features
            and not self._allows_overcomplete_code()
        ):
            raise ValueError(
                f"n_components={n_components} exceeds n_features={n_features}: "
                "a code wider than the input can copy it and learn nothing. Set "
                f"n_components <= {n_features}, or ask for an overcomplete code "
                "that training must shape: noise or sparsity (a "
                "VariationalAutoencoder's kl_weight > 0 does the same)."
            )

    def _plan_fit(
        self, X: np.ndarray, *, continuing: bool, incremental: bool
    ) -> FitPlan:
        """Check what X and the parameters allow, and decide how training goes."""
        if continuing:
            self._check_same_architecture()
        if self.loss == "binary_crossentropy":
            _check_unit_interval(X, type(self).__name__)
        rng = check_random_state(self.random_state)
        n_iter_before = self.n_iter_ if continuing else 0
        # Later warm-start or partial_fit calls shuffle differently from the first.
        seed = (int(rng.randint(np.iinfo(np.int32).max)) + n_iter_before) % 2**31
        standardization = (
            Standardization(self.mean_, self.scale_)
            if continuing
            else Standardization.of(X)
        )
        folds = self._validation_folds(X, rng, incremental)
        n_train = X.shape[0] if folds is None else min(len(f.train_rows) for f in folds)
        device = resolve_device(self.device)
        precision = self.precision
        if precision == "auto" and (
            self.image_shape is not None or self.network is not None
        ):
            # Built-in dense networks only: bfloat16 convolutions of narrow
            # images diverged on CPU, and a user's modules may not expect it.
            precision = "float32"
        config = self._training_config(
            n_train,
            standardization.scale,
            incremental,
            resolve_precision(precision, device),
        )
        if self.batch_norm and min(n_train, config.batch_size) < 2:
            raise ValueError(
                "batch_norm=True needs at least 2 samples per training batch, got "
                f"batch_size={config.batch_size} and n_samples={n_train} to train "
                "on; add data, raise batch_size or set batch_norm=False."
            )
        refit_config = config
        if self.batch_size == "auto":
            refit_config = dataclasses.replace(
                config, batch_size=min(AUTO_BATCH_SIZE, X.shape[0])
            )
        architecture = self._architecture_params()
        starts_from_pca = not continuing and self._starts_from_pca(architecture)
        if continuing:
            n_components: int | float = self._n_features_out
        elif isinstance(self.n_components, Integral):
            n_components = int(self.n_components)
        else:
            n_components = float(self.n_components)
        return FitPlan(
            X=X,
            standardization=standardization,
            seed=seed,
            device=device,
            folds=folds,
            config=config,
            refit_config=refit_config,
            build_network=partial(self._build_network, architecture, X.shape[1]),
            n_components=n_components,
            loss_terms=self._loss_terms(),
            starts_from_pca=starts_from_pca,
            # Denoising asks for more than PCA's reconstruction: its start
            # does not compete.
            start_competes=starts_from_pca
            and self.noise is None
            and self._reconstruction_judges(),
            bfloat16_for_large_steps_only=self.precision == "auto" and not continuing,
            previous_network=self._network if continuing else None,
            optimizer_state=self._optimizer_state
            if incremental and continuing
            else None,
            incremental=incremental,
            n_iter_before=n_iter_before,
        )

    def _record_fit(self, plan: FitPlan, outcome: FitOutcome) -> None:
        """Set every fitted attribute, in one block, after training succeeded."""
        continuing, result, summary = plan.continuing, outcome.fitted, outcome.summary
        loss_curve = (
            [*self.loss_curve_, *result.train_losses]
            if continuing
            else result.train_losses
        )
        self._install_network(
            outcome.network,
            plan.standardization,
            outcome.n_components,
            self._architecture_params(),
        )
        self._optimizer_state = optimizer_state_to_cpu(result.optimizer_state)
        self.loss_curve_ = loss_curve
        self.n_iter_ = plan.n_iter_before + len(result.train_losses)
        self.reconstruction_r2_ = None if summary is None else summary.r2
        self.component_importances_ = None if summary is None else summary.importances
        if plan.folds is not None:
            previous = (
                self.validation_scores_
                if continuing and self.validation_scores_
                else []
            )
            self.validation_scores_ = [
                *previous,
                *(-loss for loss in result.valid_losses),
            ]
            # The held-out score of the choice kept, which may be the start's.
            self.best_validation_score_ = (
                max(self.validation_scores_)
                if result.kept_valid_loss is None
                else -result.kept_valid_loss
            )
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(loss_curve)
        # max_iter='auto' plans its budget: ending it is the plan, as for PCA.
        if (
            not plan.incremental
            and self.max_iter != "auto"
            and not result.stopped_early
        ):
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations "
                f"({plan.config.max_iter}) reached and the optimization hasn't "
                "converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _install_network(
        self,
        network: AutoencoderNet,
        standardization: Standardization,
        n_components: int,
        architecture: dict[str, Any],
    ) -> None:
        """Make a trained network (on CPU) the fitted model, wrapped for raw input."""
        # Loaded networks take the standardisation of mean_ and scale_ too.
        network.use_standardization(standardization)
        self._network = network.eval()
        self._architecture = copy.deepcopy(architecture)
        self._n_features_out = self.n_components_ = n_components
        self.mean_, self.scale_ = standardization.mean, standardization.scale
        self.encoder_ = network.fitted_encoder(standardization)
        self.decoder_ = network.fitted_decoder(standardization)

    def _training_config(
        self,
        n_train: int,
        scale: float,
        incremental: bool,
        autocast: torch.dtype | None = None,
    ) -> TrainingConfig:
        batch_size = (
            min(AUTO_BATCH_SIZE, n_train)
            if self.batch_size == "auto"
            else self.batch_size
        )
        if incremental:
            max_iter = 1
        elif self.max_iter == "auto":
            steps_per_epoch = len(batch_bounds(n_train, batch_size))
            max_iter = int(
                np.clip(
                    np.ceil(AUTO_STEPS / steps_per_epoch),
                    AUTO_MIN_EPOCHS,
                    AUTO_MAX_EPOCHS,
                )
            )
        else:
            max_iter = self.max_iter
        return TrainingConfig(
            solver=self.solver,
            learning_rate="constant" if incremental else self.learning_rate,
            learning_rate_init=self.learning_rate_init,
            alpha=self.alpha,
            batch_size=batch_size,
            max_iter=max_iter,
            tol=AUTO_RELATIVE_TOL if self.tol == "auto" else self.tol,
            n_iter_no_change=self.n_iter_no_change,
            relative_tol=self.tol == "auto",
            autocast=autocast,
            verbose=bool(self.verbose),
            progress=not self.verbose and progress_wanted(sys.stderr),
            loss_scale=scale**2,
            training_loss_scale=1.0 if self.loss == "binary_crossentropy" else None,
        )

    def _validation_folds(
        self, X: Any, rng: np.random.RandomState, incremental: bool
    ) -> list[Fold] | None:
        """Return the folds whose held-out rows judge training (None: no holdout).

        A holdout of ``validation_fraction`` of the rows when it makes
        :data:`MIN_HOLDOUT_ROWS` or more (or when ``early_stopping=True``);
        under ``'auto'``, smaller data sets are judged by
        :data:`CV_FOLDS`-fold cross-validation instead (one fold per row
        below :data:`CV_FOLDS` rows), down to :data:`MIN_CV_ROWS` rows, so
        that every row judges once. Copies of a row stay on one side
        (:mod:`skae._folds`).
        """
        if incremental or not self.early_stopping:
            return None
        n_samples = X.shape[0]
        n_valid = int(np.ceil(self.validation_fraction * n_samples))
        cross_validate = False
        if self.early_stopping == "auto":
            if n_samples < MIN_CV_ROWS or not self._reconstruction_judges():
                return None
            cross_validate = n_valid < MIN_HOLDOUT_ROWS
        if not cross_validate and (n_valid < 1 or n_samples - n_valid < 1):
            raise ValueError(
                f"early_stopping=True cannot split n_samples={n_samples} with "
                f"validation_fraction={self.validation_fraction}; add data, change "
                "validation_fraction or set early_stopping=False."
            )
        order = rng.permutation(n_samples)
        groups = copy_groups(X)
        if not cross_validate:
            split = groups is not None and grouped_holdout(order, n_valid, groups)
            train_rows, valid_rows = split or (order[n_valid:], order[:n_valid])
            return [Fold(torch.from_numpy(train_rows), torch.from_numpy(valid_rows))]
        n_folds = min(CV_FOLDS, n_samples)
        parts = groups is not None and grouped_folds(order, n_folds, groups)
        parts = parts or np.array_split(order, n_folds)
        return [
            Fold(
                torch.from_numpy(np.concatenate(parts[:i] + parts[i + 1 :])),
                torch.from_numpy(part),
            )
            for i, part in enumerate(parts)
        ]

    def _architecture_params(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        return {
            name: copy.deepcopy(params[name])
            for name in ARCHITECTURE_PARAMS
            if name in params
        }

    def _check_same_architecture(self) -> None:
        changed = {
            name: value
            for name, value in self._architecture_params().items()
            if np.asarray(value, dtype=object).tolist()
            != np.asarray(self._architecture[name], dtype=object).tolist()
        }
        if changed:
            raise ValueError(
                f"Cannot continue training after changing {sorted(changed)}: the "
                "fitted network has another shape. Set warm_start=False to fit a "
                "new network."
            )

    # -- inference ----------------------------------------------------------------

    def _validate_for_inference(self, X: npt.ArrayLike) -> np.ndarray:
        """``validate_data`` for a fitted model; NaN and infinity wait for _map."""
        return validate_data(
            self,
            X,
            reset=False,
            dtype=FLOAT_DTYPES,
            ensure_all_finite=False,
            accept_sparse="csr",
        )

    def _map(self, module: nn.Module, X: np.ndarray, n_outputs: int) -> np.ndarray:
        """Run a fitted module on X batch by batch; refuse NaN and infinity in X.

        scikit-learn's own check would read all of X once more before the
        network does; a batch summed just before the network reads it is
        still in the cache, which makes the check nearly free.
        """
        device = resolve_device(self.device)
        torch_dtype = torch.from_numpy(np.empty(0, dtype=X.dtype)).dtype
        function = inference_module(module, device, torch_dtype)
        with torch_thread_budget() as max_threads:
            threads = choose_threads(
                function,
                to_tensor(dense_rows(X[:2]), device, torch_dtype),
                min(X.shape[0], INFERENCE_BATCH_SIZE),
                max_threads,
                training=False,
            )
            output = map_batches(
                function,
                X,
                n_outputs,
                device=device,
                dtype=X.dtype,
                threads=threads,
                check_rows=partial(assert_all_finite, input_name="X"),
            )
        return finite_output(output, X.dtype, module)


def _validate_training_data(
    estimator: BaseAutoencoder, X: npt.ArrayLike, *, reset: bool
) -> np.ndarray:
    """``validate_data`` for fit and partial_fit, into aligned C-ordered memory.

    NumPy and BLAS round differently on unaligned memory (as Dask's
    deserialised blocks can be) or on a Fortran-ordered copy of the same
    data, and Adam's first steps turn the PCA start's last-bit differences
    into different weights. One layout keeps a fit the same whatever layout
    the data arrive in; the network needs C order anyway, so this copy, when
    there is one, replaces a later one.
    """
    X = validate_data(
        estimator, X, reset=reset, dtype=FLOAT_DTYPES, accept_sparse="csr"
    )
    check_input_range(X)
    if is_sparse(X):
        return canonical_csr(X)
    return np.require(X, requirements=("C_CONTIGUOUS", "ALIGNED"))


@contextmanager
def transaction(estimator: BaseEstimator) -> Iterator[Any]:
    """Yield a stand-in to fit; if the block succeeds, make it the estimator.

    The stand-in starts with every attribute of ``estimator``; its
    attributes replace the estimator's in one step when the block ends, and
    are dropped if it raises. A failed fit or partial_fit then leaves a fitted
    model as it was, even its feature names, which ``validate_data`` resets
    before checking values; and a ``transform`` in another thread meanwhile
    sees the old model or the new one, never the new ``n_features_in_`` with
    the old network.
    """
    stand_in = object.__new__(type(estimator))
    stand_in.__dict__.update(vars(estimator))
    yield stand_in
    # One assignment: no moment where the estimator holds half of each.
    estimator.__dict__ = stand_in.__dict__


def _check_unit_interval(X: np.ndarray, name: str) -> None:
    """Refuse data outside [0, 1], where binary cross-entropy has no meaning."""
    low, high = value_range(X) if is_sparse(X) else (float(np.min(X)), float(np.max(X)))
    if low < 0 or high > 1:
        problem = "Negative values" if low < 0 else "Values above 1"
        raise ValueError(
            f"{problem} in data passed to {name} with loss='binary_crossentropy', "
            f"which needs X in [0, 1]; got values from {low:g} to {high:g}. Scale "
            "X into [0, 1] (for instance with MinMaxScaler(clip=True) in front, "
            "in a Pipeline), or use loss='squared_error'."
        )
