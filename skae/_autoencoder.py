# SPDX-License-Identifier: BSD-3-Clause
"""The scikit-learn face: parameters, validation, fitted attributes, tags."""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from threadpoolctl import threadpool_limits
from torch import nn

from skae._data import (
    INFERENCE_BATCH_SIZE,
    batch_bounds,
    iter_row_batches,
    map_batches,
    resolve_device,
    to_tensor,
)
from skae._inference import inference_module
from skae._networks import (
    ACTIVATIONS,
    LOSSES,
    NOISES,
    AutoencoderNet,
    LossTerms,
    RowSquaredError,
    SigmoidDecoder,
    Standardize,
    Unstandardize,
    build_convolutional,
    build_dense,
    start_from_pca,
    with_linear_path,
)
from skae._progress import progress_wanted
from skae._threads import choose_threads, global_rng_lock, torch_thread_budget
from skae._training import SOLVERS, TrainingConfig, reconstruction_error, train

FLOAT_DTYPES = [np.float64, np.float32]
# Optimiser steps that max_iter='auto' plans for: enough to beat PCA clearly on
# small and large data sets alike (see benchmarks/bench_training.py).
AUTO_STEPS = 3500
# early_stopping='auto' holds out validation rows once they would number this
# many; fewer are too noisy to choose the best epoch with.
MIN_AUTO_VALIDATION_ROWS = 10
# Parameters that fix the network's shape; warm_start cannot change them.
ARCHITECTURE_PARAMS = (
    "n_components",
    "init",
    "hidden_layer_sizes",
    "activation",
    "code_activation",
    "loss",
    "dropout",
    "batch_norm",
    "image_shape",
    "conv_channels",
    "network",
)


class AutoencoderTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Autoencoder dimensionality reduction, a non-linear drop-in for PCA.

    A neural network learns an encoder that maps each sample to
    ``n_components`` numbers (its code) and a decoder that maps codes back to
    the input space, trained to minimise the squared reconstruction error
    (or, for data in [0, 1], the binary cross-entropy: see ``loss``).
    ``transform`` returns codes, ``inverse_transform`` reconstructions.

    Like :class:`~sklearn.decomposition.PCA`, it works on raw features: ``fit``
    centres each feature and divides all of them by one common scale (so the
    training loss is the reconstruction error in input units, up to a
    constant), and ``inverse_transform`` undoes both. Put a
    :class:`~sklearn.preprocessing.StandardScaler` in front, as with PCA, when
    features in different units should count equally.

    The network is a PyTorch model: dense layers of ``hidden_layer_sizes``
    widths, a linear code layer, and a decoder that mirrors the encoder. It is
    computed in float32; outputs have the dtype of the input.

    By default (``init='pca'``) the network starts as PCA: a linear encoder
    set to PCA's projection, a linear decoder set to its transpose, and beside
    each a non-linear network whose last layer starts at zero. Training adds
    what a linear map cannot express, and the weights kept are those of the
    best epoch on held-out rows, the PCA start included, so the result is not
    worse than PCA on data like the held-out rows.

    Parameters
    ----------
    n_components : int or float, default=2
        Size of the code: the number of features ``transform`` returns. A
        float in (0, 1), as for :class:`~sklearn.decomposition.PCA`, asks for
        the smallest code whose reconstruction R² on the held-out rows (on the
        training rows when none are held out) reaches that fraction: ``fit``
        bisects between 1 and PCA's number of components for the same
        fraction of variance, fitting one network per size it tries, and keeps
        PCA's number if no smaller code reaches it. With ``init='pca'`` the
        network starts at PCA's reconstruction, so it needs at most as many
        components as PCA, usually fewer.

    init : {'pca', 'random'}, default='pca'
        How the network starts. 'pca': a linear path set to PCA's solution
        (fitted with :class:`~sklearn.decomposition.PCA` on the training data,
        or on the first batch of ``partial_fit``), plus non-linear networks
        that start at zero. It applies to the dense and convolutional networks,
        denoising and sparse codes included; a custom ``network`` starts from
        its own initialisation, and so does a network that cannot compute
        PCA's reconstruction: one with a ``code_activation`` other than
        'identity', or the sigmoid output of ``loss='binary_crossentropy'``.
        'random': the plain encoder and decoder with PyTorch's random
        initialisation.

    hidden_layer_sizes : array-like of int, default=(256, 128)
        Widths of the encoder's hidden layers, from the input side. The decoder
        uses them in reverse. An empty tuple gives a linear autoencoder, which
        learns the same subspace as PCA.

    activation : {'relu', 'tanh', 'logistic', 'identity', 'gelu'}, default='gelu'
        Activation after each hidden layer. GELU, smooth where ReLU has a
        kink, trained to a lower error in the same steps over the data sets
        of ``benchmarks/bench_vs_pca.py``, MNIST most of all.

    code_activation : {'identity', 'relu', 'tanh', 'logistic', 'gelu'}, \
            default='identity'
        Activation of the code layer, applied to the codes ``transform``
        returns: 'relu' gives non-negative codes, as the Keras tutorials'
        ``Dense(32, activation='relu')`` does. The codes of PCA are linear, so
        with any activation but 'identity' the network starts from random
        weights whatever ``init`` says.

    loss : {'squared_error', 'binary_crossentropy'}, default='squared_error'
        What training minimises. 'squared_error': the mean squared
        reconstruction error of the standardised data, that is of the input up
        to the constant ``scale_ ** 2``; the decoder's output is linear.
        'binary_crossentropy' (log loss) is for data in [0, 1], such as pixel
        intensities: the decoder ends in a sigmoid applied in the input's own
        units, so reconstructions are probabilities in [0, 1] whatever the
        standardisation, and each entry's target is its value in input units,
        not standardised. ``fit`` raises a ``ValueError`` for data outside
        [0, 1]; put a :class:`~sklearn.preprocessing.MinMaxScaler` with
        ``clip=True`` in front for other data. A sigmoid cannot compute PCA's
        reconstruction, so the network starts from random weights whatever
        ``init`` says. Held-out rows, ``score`` and ``validation_scores_``
        measure the squared error for either loss.

    solver : {'adam', 'adamw', 'sgd'}, default='adam'
        Optimiser. 'sgd' uses Nesterov momentum 0.9, as MLPRegressor does.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights, passed to the optimiser as
        weight decay (decoupled from the gradient for 'adamw').

    batch_size : int or 'auto', default='auto'
        Samples per training step. 'auto' uses ``min(256, n_samples)``.

    learning_rate : {'cosine', 'constant'}, default='cosine'
        Learning-rate schedule of ``fit``: 'cosine' anneals the rate from
        ``learning_rate_init`` to zero along a cosine over the planned
        ``max_iter`` epochs, step by step, which reaches a lower error in the
        same time; 'constant' keeps it. ``partial_fit`` always keeps it.

    learning_rate_init : float, default=3e-3
        Initial step size of the optimiser.

    max_iter : int or 'auto', default='auto'
        Maximum number of epochs (passes over the training data). 'auto' plans
        about 3500 optimiser steps, within 10 to 200 epochs: 200 epochs on a
        data set of a thousand rows, 17 on 60 000 rows at the default batch
        size (54 000 of them train, the rest held out), so that large data
        sets train in bounded time.

    tol : float, default=1e-4
        Training stops once the monitored loss has not improved by at least
        ``tol`` for more than ``n_iter_no_change`` consecutive epochs. The
        squared error is measured on the standardised data, so ``tol`` is
        relative to the data's total variance; a binary cross-entropy training
        loss is compared in nats per entry.

    early_stopping : bool or 'auto', default='auto'
        Hold out ``validation_fraction`` of the training data, monitor the
        reconstruction error on it instead of the training loss, and keep the
        weights of the best validation epoch; with ``init='pca'`` and no
        ``noise`` or ``sparsity``, the PCA start competes as an epoch. 'auto'
        does so when at least 10 rows would be held out (100 samples at the
        default fraction) and ``sparsity`` is 0, as reconstruction alone would
        choose the least sparse epoch; ``partial_fit`` never holds rows out.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` tolerated before stopping.

    dropout : float, default=0.0
        Dropout probability after each hidden layer during training.

    batch_norm : bool, default=False
        Batch normalisation after each hidden layer.

    noise : {'gaussian', 'mask'} or None, default=None
        Denoising: corrupt the encoder's input during training (the target
        stays clean). 'gaussian' adds noise of standard deviation
        ``noise_level`` times the data's scale; 'mask' replaces a fraction
        ``noise_level`` of the entries with their feature's mean.

    noise_level : float, default=0.1
        Strength of the corruption; used only when ``noise`` is set.

    sparsity : float, default=0.0
        Weight of a sparsity penalty on the codes (a sparse autoencoder): the
        mean absolute value of each code dimension over a batch divided by its
        root mean square, a ratio that shrinking the codes cannot lower. The
        larger, the more code entries end near zero relative to the scale of
        their dimension.

    image_shape : tuple of int (channels, height, width) or None, default=None
        Treat each row as a flattened image of this shape and encode it with
        convolutions (3x3, stride 2: each halves height and width) before the
        dense hidden layers; the decoder mirrors them with transposed
        convolutions. Rows in, rows out, so it still sits in a Pipeline. One
        entry may be -1, inferred from the number of features as in
        :func:`numpy.reshape`: ``(1, 1, -1)`` convolves any row as a 1-D signal.

    conv_channels : array-like of int, default=(32, 64)
        Output channels of each convolution; used only with ``image_shape``.

    network : callable or None, default=None
        Your own torch modules: called as ``network(n_features, n_outputs)``
        with the input width and the width the encoder must output
        (``n_components``; twice that for a variational autoencoder), it
        returns ``(encoder, decoder)``, two ``torch.nn.Module`` s mapping
        ``(batch, n_features)`` to ``(batch, n_outputs)`` and
        ``(batch, n_components)`` back to ``(batch, n_features)``. Both see
        standardised data. Training, early stopping, scoring and persistence
        work as for the built-in networks, and ``code_activation`` and
        ``loss`` apply to them (the decoder's outputs are then the logits of
        the sigmoid); ``hidden_layer_sizes``,
        ``activation``, ``dropout``, ``batch_norm``, ``image_shape`` and
        ``conv_channels`` are then unused.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation
        split. Pass an int for results that are identical, bit for bit, from
        one call to the next on CPU. Fitting never changes torch's global
        random state.

    verbose : bool, default=False
        Print the training (and validation) loss after each epoch.

    warm_start : bool, default=False
        When fitted already, ``fit`` continues from the current weights
        instead of starting afresh.

    device : str or torch.device, default='auto'
        Where the network trains and runs: 'auto' (CUDA when present, else
        CPU), 'cpu', 'cuda' or 'cuda:<index>'. Fitted modules are kept on the
        CPU, so a fitted model pickles and loads anywhere.

    Attributes
    ----------
    n_components_ : int
        Size of the code fitted: ``n_components``, or the size chosen for a
        fraction.

    encoder_ : torch.nn.Module
        Trained encoder, from input units to codes (standardisation included).

    decoder_ : torch.nn.Module
        Trained decoder, from codes back to input units (ending in the sigmoid
        with ``loss='binary_crossentropy'``).

    mean_ : ndarray of shape (`n_features_in_`,)
        Per-feature mean of the training data, removed before encoding.

    scale_ : float
        Common scale the centred data are divided by: the root mean square of
        the centred training data, estimated from at most about 8192 evenly
        spaced rows (1.0 if that is zero in float32).

    loss_curve_ : list of float
        Training loss of each epoch: in squared input units, or with
        ``loss='binary_crossentropy'`` the mean binary cross-entropy per entry,
        in nats.

    best_loss_ : float or None
        Lowest training loss reached; None when rows were held out.

    validation_scores_ : list of float or None
        Score (negative mean squared reconstruction error) on the held-out
        data after each epoch; None when no rows were held out.

    best_validation_score_ : float or None
        Held-out score of the weights kept: the best of ``validation_scores_``,
        or the PCA start's when no epoch beat it (the start is then refitted
        on all rows); None when no rows were held out.

    n_iter_ : int
        Number of epochs trained, including earlier calls under ``warm_start``
        or ``partial_fit``.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when X has string column names.

    See Also
    --------
    VariationalAutoencoder : Codes shaped by a normal prior; generates new
        samples.
    AutoencoderOutlierDetector : Outlier detection by reconstruction error
        of an autoencoder.
    compare : Held-out error and timings of PCA and the autoencoder, k by k.
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neural_network.MLPRegressor : Where the training parameters' names
        come from.

    Notes
    -----
    Training follows MLPRegressor's conventions: ``max_iter`` counts epochs,
    ``tol`` and ``n_iter_no_change`` stop training, and a
    :class:`~sklearn.exceptions.ConvergenceWarning` is raised when
    ``max_iter`` is reached first. A loss that becomes NaN or infinite stops
    training with a ``ValueError``; a failed ``fit`` leaves an already fitted
    model exactly as it was.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
    >>> codes = ae.fit_transform(X)
    >>> codes.shape
    (1797, 8)
    >>> ae.inverse_transform(codes).shape
    (1797, 64)
    >>> ae.get_feature_names_out()[:2]
    array(['autoencodertransformer0', 'autoencodertransformer1'], dtype=object)

    The Keras tutorial's dense autoencoder, for pixels in [0, 1] (it trains
    100 epochs; add ``dropout=0.5`` for its regularised variant):

    >>> tutorial = AutoencoderTransformer(
    ...     n_components=32,
    ...     hidden_layer_sizes=(64,),
    ...     code_activation="relu",
    ...     loss="binary_crossentropy",
    ...     batch_size=256,
    ...     learning_rate="constant",
    ...     learning_rate_init=1e-3,
    ...     early_stopping=False,
    ...     max_iter=2,
    ...     random_state=0,
    ... )
    >>> pixels = tutorial.fit(X / 16).inverse_transform(tutorial.transform(X / 16))
    >>> bool(pixels.min() >= 0 and pixels.max() <= 1)
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
        ],
        "init": [StrOptions({"pca", "random"})],
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "code_activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(LOSSES))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate": [StrOptions({"cosine", "constant"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "noise": [StrOptions(set(NOISES)), None],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "sparsity": [Interval(Real, 0, None, closed="left")],
        "image_shape": ["array-like", None],
        "conv_channels": ["array-like"],
        "network": [callable, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        init: str = "pca",
        hidden_layer_sizes: tuple[int, ...] = (256, 128),
        activation: str = "gelu",
        code_activation: str = "identity",
        loss: str = "squared_error",
        solver: str = "adam",
        alpha: float = 0.0,
        batch_size: int | str = "auto",
        learning_rate: str = "cosine",
        learning_rate_init: float = 3e-3,
        max_iter: int | str = "auto",
        tol: float = 1e-4,
        early_stopping: bool | str = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        dropout: float = 0.0,
        batch_norm: bool = False,
        noise: str | None = None,
        noise_level: float = 0.1,
        sparsity: float = 0.0,
        image_shape: tuple[int, int, int] | None = None,
        conv_channels: tuple[int, ...] = (32, 64),
        network: Callable[[int, int], tuple[nn.Module, nn.Module]] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        warm_start: bool = False,
        device: str | torch.device = "auto",
    ) -> None:
        self.n_components = n_components
        self.init = init
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.noise = noise
        self.noise_level = noise_level
        self.sparsity = sparsity
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.network = network
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: npt.ArrayLike, y: object = None) -> AutoencoderTransformer:
        """Fit the autoencoder to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : AutoencoderTransformer
            The fitted estimator.
        """
        continuing = self.warm_start and hasattr(self, "encoder_")
        with self._unchanged_on_failure():
            X = validate_data(self, X, reset=not continuing, dtype=FLOAT_DTYPES)
            self._train(X, continuing=continuing, incremental=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: npt.ArrayLike, y: object = None) -> AutoencoderTransformer:
        """Train for one epoch on X, continuing from the current weights.

        The first call fits the input standardisation on X and builds the
        network; later calls keep both and resume the optimiser's state, so a
        data set too large for memory can be streamed in chunks, as with
        :class:`~sklearn.decomposition.IncrementalPCA`. Early stopping does not
        apply.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : AutoencoderTransformer
            The updated estimator.
        """
        continuing = hasattr(self, "encoder_")
        if continuing:
            # _fit_context validates only a first partial_fit; set_params may
            # have changed a parameter since.
            self._validate_params()
        with self._unchanged_on_failure():
            X = validate_data(self, X, reset=not continuing, dtype=FLOAT_DTYPES)
            self._train(X, continuing=continuing, incremental=True)
        return self

    def transform(self, X: npt.ArrayLike) -> np.ndarray:
        """Encode X into codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
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
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, `n_features_in_`)
            Reconstructions, with the dtype of the codes.
        """
        check_is_fitted(self)
        # NaN and infinity are refused batch by batch in _map.
        X = check_array(X, dtype=FLOAT_DTYPES, ensure_all_finite=False)
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
        X : array-like of shape (n_samples, n_features)
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
        autoencoder without labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
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
        """
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.positive_only = self.loss == "binary_crossentropy"
        return tags

    # -- training ---------------------------------------------------------------

    def _train(self, X: np.ndarray, *, continuing: bool, incremental: bool) -> None:
        """Train on validated X and, only when that succeeds, set fitted attributes."""
        if continuing:
            self._check_same_architecture()
        if self.loss == "binary_crossentropy":
            _check_unit_interval(X, type(self).__name__)
        n_samples = X.shape[0]
        rng = check_random_state(self.random_state)
        n_iter_before = self.n_iter_ if continuing else 0
        # Later warm-start or partial_fit calls shuffle differently from the first.
        seed = (int(rng.randint(np.iinfo(np.int32).max)) + n_iter_before) % 2**31
        device = resolve_device(self.device)
        if continuing:
            mean, scale = self.mean_, self.scale_
        else:
            mean, scale = _standardization(X)
        train_rows, valid_rows = self._split_validation(n_samples, rng, incremental)
        n_train = n_samples if train_rows is None else len(train_rows)
        config = self._training_config(n_train, scale, incremental)
        if self.batch_norm and min(n_train, config.batch_size) < 2:
            raise ValueError(
                "batch_norm=True needs at least 2 samples per training batch, got "
                f"batch_size={config.batch_size} and n_samples={n_train} to train "
                "on; add data, raise batch_size or set batch_norm=False."
            )
        cuda_devices = [device.index or 0] if device.type == "cuda" else []

        with (
            global_rng_lock,
            torch_thread_budget() as max_threads,
            torch.random.fork_rng(devices=cuda_devices),
        ):
            standardize = Standardize(*_as_tensors(mean, scale)).to(device)
            with torch.no_grad():
                X_network = standardize(to_tensor(X, device))
            X_train = X_network if train_rows is None else X_network[train_rows]
            X_valid = None if valid_rows is None else X_network[valid_rows]
            del X_network

            terms = self._loss_terms()

            def fit_network(n_components: int) -> tuple[AutoencoderNet, Any]:
                """Train a network of this code size, seeded alike for every size."""
                torch.manual_seed(seed)
                generator = torch.Generator(device).manual_seed(seed)
                if continuing:
                    # Train a copy: a failure leaves the fitted network intact.
                    network = copy.deepcopy(self._network).to(device)
                else:
                    network = self._build_network(X.shape[1], n_components)
                    _set_standardization(network, mean, scale)
                    if self._starts_from_pca():
                        # PCA of the training rows only: the held-out rows judge
                        # the start as fairly as they judge the epochs.
                        rows = X if train_rows is None else X[train_rows.numpy()]
                        start_from_pca(
                            network.encoder,
                            network.decoder,
                            _principal_axes(rows, n_components, seed),
                        )
                    network = network.to(device)
                threads = choose_threads(
                    network, X_train[:2], config.batch_size, max_threads, training=True
                )
                result = train(
                    network,
                    X_train,
                    X_valid,
                    batch_loss=partial(network.training_loss, terms=terms),
                    config=config,
                    generator=generator,
                    # Denoising and sparse codes ask for more than PCA's
                    # reconstruction: their start does not compete.
                    start_is_candidate=self._starts_from_pca()
                    and not continuing
                    and terms.noise is None
                    and not terms.sparsity,
                    optimizer_state=self._optimizer_state
                    if incremental and continuing
                    else None,
                    threads=threads,
                )
                if result.kept_start and train_rows is not None:
                    # The start won: make it PCA of all rows, as a user's PCA is.
                    start_from_pca(
                        network.encoder,
                        network.decoder,
                        _principal_axes(X, n_components, seed).to(device),
                    )
                return network, result

            if continuing:
                n_components = self._n_features_out
                network, result = fit_network(n_components)
            elif isinstance(self.n_components, Integral):
                n_components = int(self.n_components)
                network, result = fit_network(n_components)
            else:
                n_components, network, result = _smallest_sufficient_code(
                    fit_network,
                    _pca_components_for(X, self.n_components),
                    self.n_components,
                    X_train if X_valid is None else X_valid,
                )
        network.cpu()

        # All fitted attributes in one block, after training succeeded.
        loss_curve = (
            [*self.loss_curve_, *result.train_losses]
            if continuing
            else result.train_losses
        )
        self._install_network(network, mean, scale, n_components)
        self._optimizer_state = _state_to_cpu(result.optimizer_state)
        self.loss_curve_ = loss_curve
        self.n_iter_ = n_iter_before + len(result.train_losses)
        if X_valid is not None:
            previous = (
                self.validation_scores_
                if continuing and self.validation_scores_
                else []
            )
            self.validation_scores_ = [
                *previous,
                *(-loss for loss in result.valid_losses),
            ]
            # The score of the weights kept, which may be the untrained start's.
            self.best_validation_score_ = (
                max(self.validation_scores_)
                if result.best_valid_loss is None
                else -result.best_valid_loss
            )
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(loss_curve)
        if not incremental and not result.stopped_early:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({config.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _install_network(
        self,
        network: AutoencoderNet,
        mean: np.ndarray,
        scale: float,
        n_components: int,
    ) -> None:
        """Make a trained network (on CPU) the fitted model, wrapped for raw input."""
        self._network = network.eval()
        self._architecture = self._architecture_params()
        self._n_features_out = self.n_components_ = n_components
        self.mean_, self.scale_ = mean, scale
        # Loaded networks take the standardisation of mean_ and scale_ too.
        _set_standardization(network, mean, scale)
        self.encoder_ = nn.Sequential(
            Standardize(*_as_tensors(mean, scale)), network.code_path()
        ).eval()
        if isinstance(network.decoder, SigmoidDecoder):
            # Exactly the sigmoid, where unstandardising would round past 0 or 1.
            self.decoder_ = network.decoder.probabilities().eval()
        else:
            self.decoder_ = nn.Sequential(
                network.decoder, Unstandardize(*_as_tensors(mean, scale))
            ).eval()

    # Variational subclasses set these: a network class and a wider encoder.
    _network_class: ClassVar[type[AutoencoderNet]] = AutoencoderNet
    _encoder_width_factor: ClassVar[int] = 1

    def _code_activation(self) -> str:
        return str(self.code_activation)

    def _starts_from_pca(self) -> bool:
        """Whether ``fit`` starts the built-in network at PCA's solution.

        Only a network that can compute PCA's reconstruction starts there: a
        linear code and output (no code activation, no sigmoid).
        """
        return (
            self._encoder_width_factor == 1
            and self.network is None
            and self.init == "pca"
            and self._code_activation() == "identity"
            and self.loss == "squared_error"
        )

    def _build_network(self, n_features: int, n_components: int) -> AutoencoderNet:
        """Build the untrained network the parameters describe.

        With ``init='pca'``, a linear encoder and decoder sit beside the
        built-in networks, whose last layers start at zero. The code activation
        follows the encoder; with ``loss='binary_crossentropy'`` the decoder's
        outputs are the logits of a :class:`SigmoidDecoder`.
        """
        n_outputs = self._encoder_width_factor * n_components
        if self.network is not None:
            encoder, decoder = _module_pair(self.network(n_features, n_outputs))
        elif self.image_shape is not None:
            image_shape = _image_shape(self.image_shape, n_features)
            encoder, decoder = build_convolutional(
                image_shape,
                n_outputs,
                n_components,
                _positive_ints(self.conv_channels, "conv_channels"),
                _positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
                activation=self.activation,
                dropout=self.dropout,
                batch_norm=self.batch_norm,
            )
        else:
            encoder, decoder = build_dense(
                n_features,
                n_outputs,
                n_components,
                _positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
                activation=self.activation,
                dropout=self.dropout,
                batch_norm=self.batch_norm,
            )
        if self._starts_from_pca():
            encoder, decoder = with_linear_path(
                encoder, decoder, n_features, n_components
            )
        if self._code_activation() != "identity":
            encoder = nn.Sequential(encoder, ACTIVATIONS[self._code_activation()]())
        if self.loss == "binary_crossentropy":
            decoder = SigmoidDecoder(decoder, n_features)
        if self._encoder_width_factor == 1:
            network = self._network_class(encoder, decoder)
        else:
            network = self._network_class(encoder, decoder, n_components)
        _check_network_widths(network, n_features, n_outputs, n_components)
        return network

    def _loss_terms(self) -> LossTerms:
        return LossTerms(
            noise=self.noise, noise_level=self.noise_level, sparsity=self.sparsity
        )

    def _training_config(
        self, n_train: int, scale: float, incremental: bool
    ) -> TrainingConfig:
        batch_size = min(256, n_train) if self.batch_size == "auto" else self.batch_size
        if incremental:
            max_iter = 1
        elif self.max_iter == "auto":
            steps_per_epoch = len(batch_bounds(n_train, batch_size))
            max_iter = int(np.clip(np.ceil(AUTO_STEPS / steps_per_epoch), 10, 200))
        else:
            max_iter = self.max_iter
        return TrainingConfig(
            solver=self.solver,
            learning_rate="constant" if incremental else self.learning_rate,
            learning_rate_init=self.learning_rate_init,
            alpha=self.alpha,
            batch_size=batch_size,
            max_iter=max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            verbose=bool(self.verbose),
            progress=not self.verbose and progress_wanted(sys.stderr),
            loss_scale=scale**2,
            training_loss_scale=1.0 if self.loss == "binary_crossentropy" else None,
        )

    def _split_validation(
        self, n_samples: int, rng: np.random.RandomState, incremental: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Row indices of the training and validation parts (None: no split)."""
        if incremental or not self.early_stopping:
            return None, None
        # Held-out rows judge reconstruction alone, which sparse codes trade
        # for sparsity: choosing epochs by it would undo what they ask for.
        if self.early_stopping == "auto" and (
            n_samples * self.validation_fraction < MIN_AUTO_VALIDATION_ROWS
            or self._loss_terms().sparsity
        ):
            return None, None
        n_valid = int(np.ceil(self.validation_fraction * n_samples))
        if n_valid < 1 or n_samples - n_valid < 1:
            raise ValueError(
                f"early_stopping=True cannot split n_samples={n_samples} with "
                f"validation_fraction={self.validation_fraction}; add data, change "
                "validation_fraction or set early_stopping=False."
            )
        order = torch.from_numpy(rng.permutation(n_samples))
        return order[n_valid:], order[:n_valid]

    def _architecture_params(self) -> dict[str, Any]:
        params = self.get_params()
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

    @contextmanager
    def _unchanged_on_failure(self) -> Iterator[None]:
        """Restore every attribute if the block raises.

        A failed fit or partial_fit then leaves a fitted model as it was, even
        its feature names, which ``validate_data`` resets before checking values.
        """
        saved = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    # -- inference ----------------------------------------------------------------

    def _validate_for_inference(self, X: npt.ArrayLike) -> np.ndarray:
        """``validate_data`` for a fitted model; NaN and infinity wait for _map."""
        return validate_data(
            self, X, reset=False, dtype=FLOAT_DTYPES, ensure_all_finite=False
        )

    def _map(self, module: nn.Module, X: np.ndarray, n_outputs: int) -> np.ndarray:
        """Run a fitted module on X batch by batch; refuse NaN and infinity in X.

        scikit-learn's own check reads all of X before the network does; a
        batch summed just before the network reads it is still in the cache,
        which makes the check nearly free (5% of ``transform`` on MNIST).
        """
        device = resolve_device(self.device)
        torch_dtype = torch.from_numpy(np.empty(0, dtype=X.dtype)).dtype
        function = inference_module(module, device, torch_dtype)
        with torch_thread_budget() as max_threads:
            threads = choose_threads(
                function,
                to_tensor(X[:2], device, torch_dtype),
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
        return _finite_output(output, X.dtype, module)


def _check_unit_interval(X: np.ndarray, name: str) -> None:
    """Refuse data outside [0, 1], where binary cross-entropy has no meaning."""
    low, high = float(np.min(X)), float(np.max(X))
    if low < 0 or high > 1:
        problem = "Negative values" if low < 0 else "Values above 1"
        raise ValueError(
            f"{problem} in data passed to {name} with loss='binary_crossentropy', "
            f"which needs X in [0, 1]; got values from {low:g} to {high:g}. Scale "
            "X into [0, 1] (for instance with MinMaxScaler(clip=True) in front, "
            "in a Pipeline), or use loss='squared_error'."
        )


def _set_standardization(
    network: AutoencoderNet, mean: np.ndarray, scale: float
) -> None:
    """Give a sigmoid decoder the input standardisation its targets undo."""
    if isinstance(network.decoder, SigmoidDecoder):
        network.decoder.set_standardization(*_as_tensors(mean, scale))


def _positive_ints(values: Any, name: str) -> tuple[int, ...]:
    """Check a sequence of positive ints (layer widths, an image shape)."""
    sizes = np.atleast_1d(np.asarray(values, dtype=object))
    if sizes.ndim != 1 or not all(
        isinstance(size, Integral) and not isinstance(size, bool) and size > 0
        for size in sizes
    ):
        raise ValueError(f"{name} must be a sequence of positive ints, got {values!r}.")
    return tuple(int(size) for size in sizes)


def _image_shape(values: Any, n_features: int) -> tuple[int, ...]:
    """Check image_shape against n_features; one -1 is inferred, as in reshape."""
    mismatch = ValueError(
        f"image_shape={values!r} must be (channels, height, width) with a product "
        f"equal to n_features={n_features}; one entry may be -1, inferred from "
        "n_features."
    )
    shape = values
    sizes = np.atleast_1d(np.asarray(values, dtype=object))
    inferred = [isinstance(size, Integral) and size == -1 for size in sizes]
    known = [size for size, infer in zip(sizes, inferred, strict=True) if not infer]
    if (
        sizes.ndim == 1
        and sum(inferred) == 1
        and all(isinstance(size, Integral) and size > 0 for size in known)
    ):
        n_inferred, remainder = divmod(n_features, int(np.prod(known)))
        if remainder or not n_inferred:
            raise mismatch
        shape = [
            n_inferred if infer else size
            for size, infer in zip(sizes, inferred, strict=True)
        ]
    image_shape = _positive_ints(shape, "image_shape")
    if len(image_shape) != 3 or np.prod(image_shape) != n_features:
        raise mismatch
    return image_shape


def _module_pair(result: Any) -> tuple[nn.Module, nn.Module]:
    """Check that a user's network factory returned (encoder, decoder) modules."""
    if not (
        isinstance(result, tuple | list)
        and len(result) == 2
        and all(isinstance(part, nn.Module) for part in result)
    ):
        raise TypeError(
            "network must return a pair (encoder, decoder) of torch.nn.Module, "
            f"got {result!r:.80}."
        )
    return result[0], result[1]


def _finite_output(
    output: np.ndarray, dtype: np.dtype, module: nn.Module
) -> np.ndarray:
    """Refuse inf or NaN computed from finite, validated input: an overflow."""
    # Batch by batch: a mask of the whole output would be as large as X is.
    if not all(np.isfinite(rows).all() for _, _, rows in iter_row_batches(output)):
        if not all(
            torch.isfinite(tensor).all() for tensor in module.state_dict().values()
        ):
            raise ValueError(
                "The model's weights hold NaN or inf, so its output would too. "
                "Training never leaves such weights: they were edited. Fit the "
                "model again, or load an intact copy."
            )
        raise ValueError(
            f"The network overflowed in {np.dtype(dtype).name}: X holds values too "
            "large once standardised with mean_ and scale_, so the result would "
            "hold inf or NaN. Rescale X like the training data, or pass float32 "
            "data as float64."
        )
    return output


def _check_network_widths(
    network: AutoencoderNet, n_features: int, n_outputs: int, n_components: int
) -> None:
    """Run two zero rows through a new network, to catch wrong widths early."""
    network.eval()
    with torch.no_grad():
        for part, n_in, n_out in (
            ("encoder", n_features, n_outputs),
            ("decoder", n_components, n_features),
        ):
            module = getattr(network, part)
            try:
                width = module(torch.zeros(2, n_in)).shape[-1]
            except RuntimeError as exc:
                raise ValueError(
                    f"The network's {part} cannot take input of width {n_in}: {exc}"
                ) from exc
            if width != n_out:
                raise ValueError(
                    f"The network's {part} returns {width} columns, expected "
                    f"{n_out}; build it for the widths it is given."
                )
    network.train()


def _pca_components_for(X: np.ndarray, fraction: float) -> int:
    """PCA's number of components explaining ``fraction`` of X's variance."""
    with np.errstate(divide="ignore", invalid="ignore"), _one_blas_thread():
        pca = PCA(n_components=fraction, svd_solver="full").fit(X)
    return max(1, int(pca.n_components_))


def _smallest_sufficient_code(
    fit_network: Callable[[int], tuple[AutoencoderNet, Any]],
    max_components: int,
    fraction: float,
    X_check: torch.Tensor,
) -> tuple[int, AutoencoderNet, Any]:
    """Search the smallest code whose reconstruction R² on X_check reaches fraction.

    A bisection over 1..``max_components`` (PCA's own size for the fraction,
    which the PCA start reaches already), fitting one network per size tried.
    ``X_check`` holds held-out rows when there are any. If no size reaches
    the fraction, PCA's size is kept.
    """
    total = float(torch.mean(X_check**2))
    fits: dict[int, tuple[AutoencoderNet, Any]] = {}

    def reaches(n_components: int) -> bool:
        fits[n_components] = fit_network(n_components)
        error = float(reconstruction_error(fits[n_components][0], X_check))
        return total == 0 or 1 - error / total >= fraction

    low, high = 1, max_components
    while low < high:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle + 1
    if low not in fits:
        reaches(low)
    return low, *fits[low]


def _principal_axes(X: np.ndarray, n_components: int, seed: int) -> torch.Tensor:
    """Return PCA's axes of X as float32 rows, at most ``n_components`` of them.

    Fewer if X has fewer samples or features. The axes are the same whether X
    is standardised or not, as skae divides every feature by one common scale.
    """
    n_axes = min(n_components, *X.shape)
    # Data without variance (one row, constant columns) has arbitrary axes,
    # and PCA warns dividing its zero variances: harmless for a start.
    with np.errstate(divide="ignore", invalid="ignore"), _one_blas_thread():
        pca = PCA(n_components=n_axes, random_state=seed).fit(X)
    return torch.as_tensor(pca.components_, dtype=torch.float32)


def _one_blas_thread() -> threadpool_limits:
    """Run NumPy's BLAS and LAPACK on one thread for the block.

    PCA's eigendecomposition on a multi-threaded BLAS waits on a thread that
    shares its core with any other busy process: with one process spinning
    beside it on 2 cores, PCA's start of a 10,000 x 784 fit took 9.8 s instead
    of a fraction of a second. On one thread it costs little more on a quiet
    machine, and its result does not depend on the machine's core count.
    """
    return threadpool_limits(limits=1, user_api="blas")


def _standardization(X: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-feature mean and one common scale (root mean square after centring).

    The scale only conditions the network, so it is estimated from at most
    about 8192 evenly spaced rows: a fraction of the cost of a full pass.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    rows = X[:: max(1, X.shape[0] // 8192)]
    scale = float(np.sqrt(np.mean(rows.var(axis=0, dtype=np.float64))))
    # Zero, too small for the float32 network to divide by, or below float32's
    # resolution at the data's magnitude (float64 rounding noise): constant data.
    float32 = np.finfo(np.float32)
    if not np.isfinite(scale) or scale < max(
        float32.tiny, float32.eps * float(np.max(np.abs(mean), initial=0.0))
    ):
        scale = 1.0
    return mean, scale


def _as_tensors(mean: np.ndarray, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(mean, dtype=torch.float32),
        torch.tensor(scale, dtype=torch.float32),
    )


def _state_to_cpu(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": {
            key: {
                name: value.cpu() if torch.is_tensor(value) else value
                for name, value in entry.items()
            }
            for key, entry in state["state"].items()
        },
        "param_groups": state["param_groups"],
    }
