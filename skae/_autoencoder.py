# SPDX-License-Identifier: BSD-3-Clause
"""The autoencoder transformer: a non-linear drop-in for PCA."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from torch import nn

from skae._base import BaseAutoencoder
from skae._layers import build_layers
from skae._networks import (
    ACTIVATIONS,
    AutoencoderNet,
    LossTerms,
    SigmoidDecoder,
    check_widths,
    with_linear_path,
)
from skae._parameters import MAX_WEIGHT, SHARED_CONSTRAINTS


class AutoencoderTransformer(BaseAutoencoder):
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
        components as PCA, usually fewer. An int larger than the number of
        features is a ``ValueError``, as for PCA, unless ``noise`` or
        ``sparsity`` is set: without a term that shapes the code, a code
        wider than the input can copy it and learns nothing.

    init : {'pca', 'random'}, default='pca'
        How the network starts. 'pca': a linear path set to PCA's solution
        (fitted with :class:`~sklearn.decomposition.PCA` on the training data,
        or on the first batch of ``partial_fit``), plus non-linear networks
        that start at zero. It applies to the dense and convolutional networks,
        denoising and sparse codes included; a custom ``network`` starts from
        its own initialisation, and so does a network that cannot compute
        PCA's reconstruction: one with a ``code_activation`` other than
        'identity', or the sigmoid output of ``loss='binary_crossentropy'``.
        Once fitted, the non-linear networks read their inputs clipped to a
        quarter beyond the range the training rows give them, so that rows
        far outside it are extrapolated linearly, as by PCA; ``partial_fit``
        leaves them unclipped.
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
        about 3500 optimiser steps, within 10 to 200 epochs, so that large
        data sets train in bounded time: 200 epochs on a thousand training
        rows, 17 on 54 000 (60 000 rows, 10% held out) at the default batch
        size. Ending that plan
        raises no ``ConvergenceWarning``; reaching an integer ``max_iter``
        before the stopping rule does, as in MLPRegressor.

    tol : float or 'auto', default='auto'
        Training stops once the monitored loss has not improved by at least
        ``tol`` for more than ``n_iter_no_change`` consecutive epochs. 'auto'
        asks each improvement to be a share (0.01%) of the best loss so far,
        whatever the units of the data. A float keeps MLPRegressor's meaning:
        an absolute fall, with the squared error measured on the standardised
        data (so relative to its total variance) and a binary cross-entropy
        in nats per entry.

    early_stopping : bool or 'auto', default='auto'
        Judge training on rows it does not train on: hold out
        ``validation_fraction`` of the data, monitor the reconstruction error
        on it instead of the training loss, and stop once it stops improving.
        The model kept then learns from every row: the best epoch's network
        goes on over all of them for the held-out share of its epochs, at a
        tenth of the learning rate (refitted on all rows for the best epoch's
        number of epochs under cross-validation), or, with ``init='pca'``
        and no ``noise`` or ``sparsity``, it is the PCA start (fitted on all
        rows) unless training beat the start on the held-out rows by more than
        the noise of that comparison. 'auto' holds out rows when at least 100
        would be held out (1,000 samples at the default fraction); from 3 to
        999 samples, 5-fold cross-validation judges instead (one fold per
        sample below 5), every row held out once, and fewer than 10 held-out
        rows never let training replace the PCA start; it holds out nothing
        from one or two samples or when ``sparsity`` is set, as reconstruction
        alone would choose the least sparse epoch. ``partial_fit`` never holds
        rows out (:ref:`pca_start`).

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.
        Copies of a row are held out together, so the share is approximate
        when rows repeat.

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
        Seeds weight initialisation, shuffling, dropout, the noise of
        denoising, the codes a variational autoencoder draws in training and
        the validation split. Fitting never changes torch's global random
        state. With an int, a fit on CPU is identical, bit for bit, from one
        call or process to the next, and so are its outputs after
        :func:`save` and :func:`load`, whenever each step runs on the same
        number of torch threads: always inside :func:`fixed_threads`, and
        always for networks whose training and inference steps are small
        enough to run on one thread by rule (the default network on the
        64-pixel digits is). For larger steps skae chooses thread counts by
        timing, so the counts can change from run to run, and with them the
        order in which some kernels add: batch normalisation
        (``batch_norm=True``) sums its batch statistics in an order that
        depends on the count, so such fits then agree only to rounding (about
        1e-7 relative per step, which training can amplify). Dense layers
        without it gave the same bits on one and two threads when measured,
        which torch does not promise. Pin the count with
        :func:`fixed_threads` where bit-identical results matter (see
        :ref:`threads`).

    verbose : bool, default=False
        Print the training (and validation) loss after each epoch.

    warm_start : bool, default=False
        When fitted already, ``fit`` continues from the current weights
        instead of starting afresh.

    device : str or torch.device, default='auto'
        Where the network trains and runs: 'auto' (CUDA when present, else
        CPU), 'cpu', 'cuda' or 'cuda:<index>'. Fitted modules are kept on the
        CPU, so a fitted model pickles and loads anywhere.

    precision : {'auto', 'float32', 'bfloat16'}, default='auto'
        Arithmetic of the training steps. 'bfloat16' trains with PyTorch's
        bfloat16 autocast (mixed precision, Lightning's "bf16-mixed"): matrix
        products in bfloat16, weights, optimiser state, losses, held-out
        errors and the PCA start in float32. 'auto' does so for the built-in
        dense networks whose training steps are large enough to gain where
        the device has bfloat16 in hardware (CPUs with AVX-512 BF16 or AMX,
        CUDA devices with bfloat16), and trains in float32 elsewhere, for
        small steps, and for convolutional and custom networks; 'bfloat16' on other
        hardware warns, as it is emulated and slower. ``transform`` and the
        other inference methods always compute in float32. Set 'float32' for
        results that are the same on every machine (:ref:`scaling`).

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
        Training loss of each epoch of the model kept (with held-out rows, the
        judged epochs up to the best, then those over every row; under
        cross-validation, its refit's; all the judged epochs when the PCA
        start is kept): in squared input units, or with ``loss='binary_crossentropy'``
        the mean binary cross-entropy per entry, in nats.

    best_loss_ : float or None
        Lowest training loss reached; None when rows were held out.

    validation_scores_ : list of float or None
        Score (negative mean squared reconstruction error) on the held-out
        rows after each judged epoch, pooled over the folds under
        cross-validation; None when no rows were held out.

    best_validation_score_ : float or None
        Held-out score of the choice kept: the best of ``validation_scores_``,
        or the PCA start's when training did not beat it by more than the
        noise of the comparison; None when no rows were held out.

    n_iter_ : int
        Number of epochs the model kept trained (the length of
        ``loss_curve_``), including earlier calls under ``warm_start`` or
        ``partial_fit``.

    reconstruction_r2_ : float or None
        Share of the data's variance the codes keep: ``1 - SSE / SST``, the
        squared reconstruction error over the squared deviation from the
        mean, summed over the entries. On the held-out rows, as training
        judged the model kept, when ``fit`` held rows out (pooled over the
        folds under cross-validation); else on the training rows (at most
        2048 of them, evenly spaced, as for the importances). Like
        ``explained_variance_ratio_.sum()`` of PCA, which it equals for a
        network left at the PCA start (on the same rows). None after
        ``partial_fit``, which measures nothing (nor does a model loaded from
        a file of skae 0.1).

    component_importances_ : ndarray of shape (`n_components_`,) or None
        Share of the data's variance each code column carries: the rise in
        the squared reconstruction error when that column is set to its mean,
        over the squared deviation of the data from its mean; measured on at
        most 2048 evenly spaced training rows. For a network left at the PCA
        start these are PCA's ``explained_variance_ratio_``; a non-linear
        decoder's columns interact, so their sum need not equal
        ``reconstruction_r2_``. ``fit`` orders the code columns by it,
        largest first, as PCA orders its components (columns of a custom
        ``network`` keep their order). None when ``reconstruction_r2_`` is.

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
        **SHARED_CONSTRAINTS,
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
        ],
        "init": [StrOptions({"pca", "random"})],
        "code_activation": [StrOptions(set(ACTIVATIONS))],
        "sparsity": [Interval(Real, 0, MAX_WEIGHT, closed="both")],
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
        tol: float | str = "auto",
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
        precision: str = "auto",
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
        self.precision = precision

    def _starts_from_pca(self, architecture: dict[str, Any]) -> bool:
        """Whether ``fit`` starts the built-in network at PCA's solution.

        Only a network that can compute PCA's reconstruction starts there: a
        linear code and output (no code activation, no sigmoid).
        """
        return (
            architecture["network"] is None
            and architecture["init"] == "pca"
            and architecture["code_activation"] == "identity"
            and architecture["loss"] == "squared_error"
        )

    def _build_network(
        self, architecture: dict[str, Any], n_features: int, n_components: int
    ) -> AutoencoderNet:
        """Build the untrained network ``architecture`` describes.

        With ``init='pca'``, a linear encoder and decoder sit beside the
        built-in networks, whose last layers start at zero. The code activation
        follows the encoder; with ``loss='binary_crossentropy'`` the decoder's
        outputs are the logits of a :class:`SigmoidDecoder`.
        """
        encoder, decoder = build_layers(
            architecture, n_features, n_components, n_components
        )
        if self._starts_from_pca(architecture):
            encoder, decoder = with_linear_path(
                encoder, decoder, n_features, n_components
            )
        if architecture["code_activation"] != "identity":
            activation = ACTIVATIONS[architecture["code_activation"]]
            encoder = nn.Sequential(encoder, activation())
        if architecture["loss"] == "binary_crossentropy":
            decoder = SigmoidDecoder(decoder, n_features)
        # float32 whatever torch's default dtype: skae trains in float32.
        network = AutoencoderNet(encoder, decoder).float()
        check_widths(network, n_features, n_components, n_components)
        return network

    def _loss_terms(self) -> LossTerms:
        return LossTerms(
            noise=self.noise, noise_level=self.noise_level, sparsity=self.sparsity
        )

    def _allows_overcomplete_code(self) -> bool:
        # A code made sparse cannot simply copy X.
        return self.sparsity > 0 or super()._allows_overcomplete_code()

    def _reconstruction_judges(self) -> bool:
        # Sparse codes trade reconstruction for sparsity.
        return not self.sparsity
