# SPDX-License-Identifier: BSD-3-Clause
"""The variational autoencoder: a generative model with the family's face."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn

from skae._base import BaseAutoencoder
from skae._checks import is_positive_int
from skae._data import batch_bounds
from skae._layers import build_layers
from skae._networks import (
    AutoencoderNet,
    LossTerms,
    SigmoidDecoder,
    VariationalNet,
    check_widths,
)
from skae._parameters import MAX_WEIGHT, SHARED_CONSTRAINTS

# Rows of codes drawn and decoded at a time by ``sample``.
SAMPLE_BATCH_SIZE = 65536


class VariationalAutoencoder(BaseAutoencoder):
    """Variational autoencoder: codes with a prior, and new samples from it.

    The encoder maps each sample to a Gaussian posterior over the code (a mean
    and a variance per code dimension); training draws codes from it and
    minimises the reconstruction error plus ``kl_weight`` times the
    Kullback-Leibler divergence from the posterior to a standard normal prior.
    Codes of the training data then fill a standard normal cloud without
    holes, so decoding standard normal draws with :meth:`sample` generates new
    samples that resemble the training data.

    Everything else is :class:`AutoencoderTransformer`: the same parameters
    (except ``sparsity`` and ``code_activation``: the prior already shapes the
    codes; nor does ``init='pca'`` apply), the same
    training loop, early stopping, scoring and persistence. ``transform``
    returns the posterior means, so it is deterministic and sits in a Pipeline
    as any transformer does; ``inverse_transform`` decodes codes, and
    ``score`` is the negative mean squared error of reconstructing the
    posterior means, comparable with the plain autoencoder's.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the code (the latent space): the number of features
        ``transform`` returns. It may exceed the number of features, as the
        KL divergence prices every code dimension the decoder relies on;
        with ``kl_weight=0`` and no ``noise``, a code wider than the input is
        a ``ValueError``, as for :class:`AutoencoderTransformer`.

    kl_weight : float, default=1.0
        Weight of the KL divergence to the prior, relative to the mean
        squared reconstruction error of the standardised data; the divergence
        is divided by the number of features so that the weight does not
        depend on it. Larger values give smoother, more prior-like codes and
        blurrier reconstructions; 0 trains a plain autoencoder with noisy
        codes.

    hidden_layer_sizes : array-like of int, default=(256, 128)
        Widths of the encoder's hidden layers, from the input side. The decoder
        uses them in reverse. An empty tuple gives a linear autoencoder, which
        learns the same subspace as PCA.

    activation : {'relu', 'tanh', 'logistic', 'identity', 'gelu'}, default='relu'
        Activation after each hidden layer.

    loss : {'squared_error', 'binary_crossentropy'}, default='squared_error'
        The reconstruction term, as in :class:`AutoencoderTransformer`:
        'binary_crossentropy' is for data in [0, 1] and ends the decoder in a
        sigmoid in the input's units (a Bernoulli decoder); ``kl_weight=1``
        then makes the objective the negative evidence lower bound per
        feature exactly, and :meth:`sample` returns the Bernoulli means.

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

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, monitor the
        reconstruction error of its posterior means instead of the training
        loss, and stop once it stops improving; the best epoch's network then
        goes on over every row for the held-out share of its epochs, at a
        tenth of the learning rate.

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
        Your own torch modules, as in :class:`AutoencoderTransformer`: called
        as ``network(n_features, 2 * n_components)``, the encoder it returns
        must output the posterior means in its first ``n_components`` columns
        and their log-variances in the others.

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
        Size of the code fitted: ``n_components``.

    encoder_ : torch.nn.Module
        Trained encoder, from input units to posterior means.

    decoder_ : torch.nn.Module
        Trained decoder, from codes back to input units.

    mean_ : ndarray of shape (`n_features_in_`,)
        Per-feature mean of the training data, removed before encoding.

    scale_ : float
        Common scale the centred data are divided by.

    loss_curve_ : list of float
        Training loss (reconstruction error plus weighted KL divergence) of
        each epoch, in squared input units (in nats per entry with
        ``loss='binary_crossentropy'``).

    best_loss_ : float or None
        Lowest training loss reached; None when ``early_stopping=True``.

    validation_scores_ : list of float or None
        Score on the held-out data after each epoch; None unless
        ``early_stopping=True``.

    best_validation_score_ : float or None
        Best of ``validation_scores_``; None unless ``early_stopping=True``.

    n_iter_ : int
        Number of epochs the model kept trained: with held-out rows, the
        judged epochs up to the best, then those over every row.

    reconstruction_r2_ : float or None
        Share of the data's variance the posterior means keep: ``1 - SSE /
        SST`` of their reconstructions, on the held-out rows when ``fit`` held
        some out, else on at most 2048 training rows; None after ``partial_fit``, as
        for :class:`AutoencoderTransformer`.

    component_importances_ : ndarray of shape (`n_components_`,) or None
        Share of the data's variance each code column carries (the rise in
        squared reconstruction error when the column is set to its mean),
        on at most 2048 training rows; ``fit`` orders the columns by it,
        largest first. None when ``reconstruction_r2_`` is.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when X has string column names.

    See Also
    --------
    AutoencoderTransformer : The deterministic autoencoder.
    AutoencoderOutlierDetector : Outlier detection by reconstruction error,
        over either autoencoder.
    sklearn.neighbors.KernelDensity : Another estimator with a ``sample``
        method.

    Notes
    -----
    The reconstruction term is the mean squared error of the standardised data
    and the KL term is divided by the number of features, so the objective is
    proportional to the negative evidence lower bound of a Gaussian decoder
    whose variance, in standardised units, is ``kl_weight / 2``. The default
    ``kl_weight=1`` thus assumes noise of half the data's average variance per
    feature: a strong prior that favours smooth codes and well-formed samples
    over sharp reconstructions.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VariationalAutoencoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VariationalAutoencoder(n_components=4, max_iter=5, random_state=0)
    >>> vae.fit_transform(X).shape
    (1797, 4)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    >>> vae.get_feature_names_out()[:2]
    array(['variationalautoencoder0', 'variationalautoencoder1'], dtype=object)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SHARED_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "kl_weight": [Interval(Real, 0, MAX_WEIGHT, closed="both")],
    }

    def __init__(
        self,
        n_components: int = 2,
        *,
        kl_weight: float = 1.0,
        hidden_layer_sizes: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        loss: str = "squared_error",
        solver: str = "adam",
        alpha: float = 0.0,
        batch_size: int | str = "auto",
        learning_rate: str = "cosine",
        learning_rate_init: float = 3e-3,
        max_iter: int | str = "auto",
        tol: float | str = "auto",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        dropout: float = 0.0,
        batch_norm: bool = False,
        noise: str | None = None,
        noise_level: float = 0.1,
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
        self.kl_weight = kl_weight
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.network = network
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.precision = precision

    def sample(
        self,
        n_samples: int = 1,
        random_state: int | np.random.RandomState | None = None,
    ) -> np.ndarray:
        """Generate new samples by decoding codes drawn from the prior.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        random_state : int, RandomState instance or None, default=None
            Seeds the standard normal codes. Pass an int for the same samples
            on every call.

        Returns
        -------
        X_new : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples, in the units of the training data (float64).
            Codes are drawn and decoded in batches, so the memory needed
            beyond ``X_new`` does not grow with ``n_samples``.

        Raises
        ------
        ValueError
            If ``X_new`` would not fit in this machine's memory.
        """
        check_is_fitted(self)
        if not is_positive_int(n_samples):
            raise ValueError(
                f"n_samples must be a positive int, got {n_samples!r}; ask for "
                "at least one sample."
            )
        n_samples = int(n_samples)
        X_new = _allocate_samples(n_samples, self.n_features_in_)
        rng = check_random_state(random_state)
        # One batch of codes after another draws the same numbers as one
        # draw of all of them.
        for start, stop in batch_bounds(n_samples, SAMPLE_BATCH_SIZE):
            codes = rng.standard_normal(size=(stop - start, self._n_features_out))
            X_new[start:stop] = self.inverse_transform(codes)
        return X_new

    def _build_network(
        self, architecture: dict[str, Any], n_features: int, n_components: int
    ) -> AutoencoderNet:
        """Build an encoder that outputs a mean and a log-variance per code entry."""
        encoder, decoder = build_layers(
            architecture, n_features, 2 * n_components, n_components
        )
        if architecture["loss"] == "binary_crossentropy":
            decoder = SigmoidDecoder(decoder, n_features)
        # float32 whatever torch's default dtype: skae trains in float32.
        network = VariationalNet(encoder, decoder, n_components).float()
        check_widths(network, n_features, 2 * n_components, n_components)
        return network

    def _loss_terms(self) -> LossTerms:
        return LossTerms(
            noise=self.noise, noise_level=self.noise_level, kl_weight=self.kl_weight
        )

    def _allows_overcomplete_code(self) -> bool:
        # The KL term prices every code dimension the decoder relies on.
        return self.kl_weight > 0 or super()._allows_overcomplete_code()


def _allocate_samples(n_samples: int, n_features: int) -> np.ndarray:
    """Allocate sample's output, or say why it cannot fit in memory."""
    n_bytes = n_samples * n_features * np.dtype(np.float64).itemsize
    too_large = ValueError(
        f"sample(n_samples={n_samples}) would return {n_bytes / 2**30:.1f} GiB "
        f"({n_samples} x {n_features} float64 values), more than this machine's "
        "memory; draw fewer samples per call."
    )
    if n_bytes > _physical_memory():
        raise too_large
    try:
        return np.empty((n_samples, n_features))
    except MemoryError:
        raise too_large from None


def _physical_memory() -> float:
    """Bytes of physical memory, or inf where the system does not say."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return math.inf
