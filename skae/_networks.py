# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: the modules skae trains, the loss each one minimises, their checks.

Every network works on standardised data; :meth:`AutoencoderNet.fitted_encoder`
and :meth:`AutoencoderNet.fitted_decoder` put it between raw input and raw
output. The checks of a new network's widths and of saved weights live here
too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from skae._data import INFERENCE_BATCH_SIZE, Rows, batch_bounds
from skae._standardization import Standardization

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
}
NOISES = ("gaussian", "mask")
# Reconstruction losses: the squared error of any decoder's output, or the
# binary cross-entropy of a SigmoidDecoder's probabilities.
LOSSES = ("squared_error", "binary_crossentropy")
# How far beyond the training rows' range, as a share of its width, a
# residual's input goes unclipped (docs/pca_start.rst).
RANGE_MARGIN = 0.25
# The bound of an unbounded range: finite, so that every weight stays finite.
UNBOUNDED = torch.finfo(torch.float32).max


@dataclass(frozen=True)
class LossTerms:
    """What the training loss adds to plain reconstruction, and how much.

    ``noise`` corrupts the encoder's input (denoising: the target stays
    clean); ``sparsity`` weighs a scale-free L1 penalty on the codes (see
    :func:`code_sparsity_penalty`); ``kl_weight`` weighs the variational
    networks' KL divergence.
    """

    noise: str | None = None
    noise_level: float = 0.0
    sparsity: float = 0.0
    kl_weight: float = 1.0


def corrupt(x: torch.Tensor, noise: str | None, level: float) -> torch.Tensor:
    """Corrupt standardised input for denoising.

    'gaussian' adds noise of standard deviation ``level`` (in units of the
    data's scale); 'mask' sets a fraction ``level`` of the entries to their
    feature's mean, which is 0 after standardisation.
    """
    if noise == "gaussian":
        return x + level * torch.randn_like(x)
    if noise == "mask":
        return x * (torch.rand_like(x) >= level)
    return x


class AutoencoderNet(nn.Module):
    """An encoder and a decoder trained to reconstruct their input."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def code_path(self) -> nn.Module:
        """Return the module from standardised input to codes (``transform``)."""
        return self.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x``."""
        return self.decoder(self.code_path()(x))

    def use_standardization(self, standardization: Standardization) -> None:
        """Give a decoder that works in input units the standardisation it undoes."""
        if isinstance(self.decoder, SigmoidDecoder):
            self.decoder.set_standardization(*standardization.tensors())

    def fitted_encoder(self, standardization: Standardization) -> nn.Module:
        """Return the module from raw input to codes (``transform``)."""
        return nn.Sequential(standardization.module(), self.code_path()).eval()

    def fitted_decoder(self, standardization: Standardization) -> nn.Module:
        """Return the module from codes to raw reconstructions."""
        if isinstance(self.decoder, SigmoidDecoder):
            # Exactly the sigmoid, where unstandardising would round past 0 or 1.
            return self.decoder.probabilities().eval()
        return nn.Sequential(self.decoder, standardization.inverse_module()).eval()

    def training_loss(self, x: torch.Tensor, terms: LossTerms) -> torch.Tensor:
        """Reconstruction loss of ``x``, plus the terms asked for."""
        codes = self.encoder(corrupt(x, terms.noise, terms.noise_level))
        loss = reconstruction_loss(self.decoder, codes, x)
        if terms.sparsity > 0:
            loss = loss + terms.sparsity * code_sparsity_penalty(codes)
        return loss


def reconstruction_loss(
    decoder: nn.Module, codes: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """Mean loss per entry of reconstructing standardised ``x`` from ``codes``.

    The squared error of the decoder's output, or, for a
    :class:`SigmoidDecoder`, the binary cross-entropy of its probabilities.
    """
    if isinstance(decoder, SigmoidDecoder):
        return decoder.binary_cross_entropy(codes, x)
    return F.mse_loss(decoder(codes).float(), x)


class SigmoidDecoder(nn.Module):
    """A decoder whose reconstructions are probabilities, in the input's units.

    ``logits`` maps codes to one logit per feature; ``sigmoid(logits)`` are the
    reconstructions in the input's units, in [0, 1]. Like every decoder, it
    returns them standardised, ``(sigmoid(logits) - mean) / scale``, with the
    buffers ``mean`` and ``scale`` of the input standardisation (set by
    :meth:`set_standardization`), so its output and error compare with the
    network's input as any decoder's do.
    """

    def __init__(self, logits: nn.Module, n_features: int) -> None:
        super().__init__()
        self.logits = logits
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(()))

    def set_standardization(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Use the input standardisation ``(x - mean) / scale``."""
        self.mean = mean.to(self.mean)
        self.scale = scale.to(self.scale)

    def probabilities(self) -> nn.Sequential:
        """Return the module from codes to reconstructions in input units."""
        return nn.Sequential(self.logits, nn.Sigmoid())

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruct standardised rows from ``codes``."""
        return (torch.sigmoid(self.logits(codes)) - self.mean) / self.scale

    def binary_cross_entropy(
        self, codes: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """Mean binary cross-entropy of the reconstructions of standardised ``x``.

        The targets are ``x`` in input units, which must lie in [0, 1]; the
        clamp removes only float32 rounding. Computed from the logits, which is
        exact where a sigmoid rounds to 0 or 1.
        """
        targets = torch.addcmul(self.mean, x, self.scale).clamp(0, 1)
        return F.binary_cross_entropy_with_logits(self.logits(codes), targets)


def code_sparsity_penalty(codes: torch.Tensor) -> torch.Tensor:
    """Mean over code dimensions of L1 / L2 of the dimension's batch values.

    A plain L1 penalty on codes is evaded by shrinking the codes and growing
    the decoder's weights to match; dividing each dimension by its own root
    mean square makes the penalty blind to scale, so only codes with many
    entries near zero, relative to their dimension's scale, lower it.
    """
    l1 = codes.abs().mean(dim=0)
    mean_square = codes.pow(2).mean(dim=0)
    # A dimension far smaller than the largest, or than 1e-4 of the data's
    # scale (PCA's last axes on nearly constant data), would get gradients of
    # 1 / its scale: its penalty fades instead. Above that the floor scales
    # with the codes, so shrinking them all evades nothing.
    floor = (SPARSITY_FLOOR**2 * mean_square.max().detach()).clamp_min(1e-8)
    l2 = (mean_square + floor).sqrt()
    return (l1 / l2).mean()


# Relative code scale below which a dimension's sparsity penalty fades.
SPARSITY_FLOOR = 1e-4


class FirstColumns(nn.Module):
    """Keep the first ``n`` columns: a variational encoder's posterior means."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Slice the means off the concatenated means and log-variances."""
        return x[:, : self.n]


class VariationalNet(AutoencoderNet):
    """Variational autoencoder network.

    The encoder returns posterior means, then log-variances, side by side
    (``2 * n_components`` columns). Deterministic use (``forward``,
    ``code_path``) goes through the posterior mean; training samples codes
    with the reparameterisation trick.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, n_components: int):
        super().__init__(encoder, decoder)
        self.means = FirstColumns(n_components)

    def code_path(self) -> nn.Module:
        """Return the encoder followed by the posterior-mean slice."""
        return nn.Sequential(self.encoder, self.means)

    def training_loss(self, x: torch.Tensor, terms: LossTerms) -> torch.Tensor:
        """Reconstruction error of sampled codes plus weighted KL divergence.

        The KL divergence to the standard normal prior is summed over code
        dimensions and divided by the number of features, so that it is on the
        per-entry scale of the reconstruction loss it is added to.
        """
        # float32 for the exponentials, also under bfloat16 autocast.
        posterior = self.encoder(corrupt(x, terms.noise, terms.noise_level)).float()
        mean, log_var = posterior.chunk(2, dim=1)
        codes = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        kl = -0.5 * torch.sum(1 + log_var - mean**2 - log_var.exp(), dim=1).mean()
        return (
            reconstruction_loss(self.decoder, codes, x)
            + terms.kl_weight * kl / x.shape[1]
        )


class InputRange(nn.Module):
    """Clip each input column to ``[low, high]``; unbounded until fitted.

    A fitted network's non-linear corrections see their inputs clipped to a
    little beyond the range the training rows span (:func:`fit_input_ranges`),
    so that a row far outside it gets the linear map's extrapolation, as PCA
    would, plus a correction the training rows bound, not one extrapolated
    without limit by the activations (docs/pca_start.rst).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.register_buffer("low", torch.full((width,), -UNBOUNDED))
        self.register_buffer("high", torch.full((width,), UNBOUNDED))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip ``x`` column by column; in training, pass it on."""
        # Ranges are fitted after training: a training step has none to apply.
        if self.training:
            return x
        return torch.clamp(x, self.low, self.high)

    @torch.no_grad()
    def set_range(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Clip to ``[low, high]`` widened by :data:`RANGE_MARGIN` of its width."""
        margin = RANGE_MARGIN * (high - low)
        self.low.copy_(low - margin)
        self.high.copy_(high + margin)

    @torch.no_grad()
    def unbound(self) -> None:
        """Clip nothing."""
        self.low.fill_(-UNBOUNDED)
        self.high.fill_(UNBOUNDED)

    @torch.no_grad()
    def to_input_units(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Move the bounds, in place, to the units before ``(x - mean) / scale``."""
        # scale > 0 keeps the bounds in order; unbounded ones stay unbounded.
        for bound in (self.low, self.high):
            bound.copy_((bound * scale + mean).clamp(-UNBOUNDED, UNBOUNDED))


class LinearWithResidual(nn.Module):
    """A linear map plus a non-linear correction: ``linear(x) + residual(x)``.

    With the linear map set to PCA's and the residual's last layer at zero,
    the network starts as PCA exactly (see :func:`start_from_pca`), and
    training can only add what a linear map cannot express. The residual
    reads its input through an :class:`InputRange`, unbounded until fitted.
    """

    def __init__(self, linear: nn.Linear, residual: nn.Module) -> None:
        super().__init__()
        self.linear = linear
        self.input_range = InputRange(linear.in_features)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the linear map and add the residual of the clipped input."""
        return self.linear(x) + self.residual(self.input_range(x))


def linear_paths(network: nn.Module) -> list[LinearWithResidual]:
    """Return the network's linear paths with residuals, in forward order."""
    return [m for m in network.modules() if type(m) is LinearWithResidual]


@torch.no_grad()
def fit_input_ranges(network: AutoencoderNet, X: Rows) -> None:
    """Bound each residual's input to the range the rows of X give it.

    X is the training rows, standardised: in one pass in evaluation mode,
    the encoder's residual sees X, the decoder's the codes of X. Ranges fitted
    before are dropped first.
    """
    paths = linear_paths(network)
    if len(paths) != 2:
        return
    for path in paths:
        path.input_range.unbound()
    network.eval()
    # Per residual, each batch's column minima and maxima.
    extremes: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    for start, stop in batch_bounds(X.shape[0], INFERENCE_BATCH_SIZE):
        rows = X[start:stop]
        residual_inputs = (rows, network.code_path()(rows))
        for found, inputs in zip(extremes, residual_inputs, strict=True):
            found.append(torch.stack([inputs.amin(dim=0), inputs.amax(dim=0)]))
    for path, found in zip(paths, extremes, strict=True):
        bounds = torch.stack(found)
        path.input_range.set_range(bounds[:, 0].amin(dim=0), bounds[:, 1].amax(dim=0))


# Layers whose weights with_linear_path zeroes, the last of each network.
_WEIGHTED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def with_linear_path(
    encoder: nn.Module, decoder: nn.Module, n_features: int, n_components: int
) -> tuple[LinearWithResidual, LinearWithResidual]:
    """Put a linear encoder and decoder beside a network, which starts at zero.

    The last layer with weights of ``encoder`` and of ``decoder`` is zeroed, so
    until training moves them the pair computes the linear maps alone.
    """
    for residual in (encoder, decoder):
        last = [m for m in residual.modules() if isinstance(m, _WEIGHTED_LAYERS)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return (
        LinearWithResidual(nn.Linear(n_features, n_components), encoder),
        LinearWithResidual(nn.Linear(n_components, n_features), decoder),
    )


@torch.no_grad()
def start_from_pca(
    encoder: LinearWithResidual,
    decoder: LinearWithResidual,
    components: torch.Tensor,
) -> None:
    """Set the linear paths to PCA's projection and its transpose.

    ``components`` holds orthonormal principal axes of the standardised
    (centred) training data as rows, at most one per code dimension; code
    dimensions beyond them start unused, at zero.
    """
    n_axes = components.shape[0]
    for layer in (encoder.linear, decoder.linear):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    encoder.linear.weight[:n_axes] = components
    decoder.linear.weight[:, :n_axes] = components.T


class RowSquaredError(nn.Module):
    """Mean squared reconstruction error of each row, as a ``(n, 1)`` column."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` and average the squared errors over features."""
        return torch.mean((self.decoder(self.encoder(x)) - x) ** 2, dim=1, keepdim=True)


def check_widths(
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
                width = module(torch.zeros(2, n_in, dtype=torch.float32)).shape[-1]
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


def load_weights(network: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Make saved tensors the network's weights, after checking each one.

    The network may be built on torch's "meta" device: the tensors are
    assigned, not copied. Raises ValueError saying what does not fit.
    """
    expected = network.state_dict()
    range_modules = [n for n, m in network.named_modules() if type(m) is InputRange]
    weights = {**_unbounded_ranges(expected, range_modules, weights), **weights}
    if sorted(expected) != sorted(weights):
        raise ValueError(
            f"its weights {sorted(weights)!r:.200} do not fit the network its "
            f"parameters describe, which has {sorted(expected)!r:.200}"
        )
    for key, tensor in expected.items():
        if weights[key].shape != tensor.shape or weights[key].dtype != tensor.dtype:
            raise ValueError(
                "its weights do not fit the network its parameters describe: "
                f"{key!r} is {weights[key].dtype} of shape "
                f"{tuple(weights[key].shape)}, the network's {tensor.dtype} of "
                f"shape {tuple(tensor.shape)}"
            )
        if weights[key].is_floating_point() and not all_finite(weights[key]):
            raise ValueError(f"its weight {key!r} holds NaN or inf")
    for name in range_modules:
        _check_range(name, weights[f"{name}.low"], weights[f"{name}.high"])
    network.load_state_dict(weights, strict=True, assign=True)
    if any(tensor.is_meta for tensor in [*network.parameters(), *network.buffers()]):
        raise ValueError("the network it describes has tensors the file lacks")
    for name, module in network.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            _check_running_statistics(name, module)


def _unbounded_ranges(
    expected: dict[str, torch.Tensor],
    range_modules: list[str],
    weights: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Unbounded input ranges where weights give none (files of format 3 and before)."""
    missing = {}
    for name in range_modules:
        if f"{name}.low" not in weights and f"{name}.high" not in weights:
            width = expected[f"{name}.low"].shape[0]
            missing[f"{name}.low"] = torch.full((width,), -UNBOUNDED)
            missing[f"{name}.high"] = torch.full((width,), UNBOUNDED)
    return missing


def _check_range(name: str, low: torch.Tensor, high: torch.Tensor) -> None:
    """Refuse crossed bounds, which fitting cannot produce."""
    if bool((low > high).any()):
        raise ValueError(f"its input range {name!r} has a low bound above its high one")


def _check_running_statistics(name: str, norm: nn.modules.batchnorm._BatchNorm) -> None:
    """Refuse batch statistics that training cannot produce (a negative variance)."""
    if norm.running_var is not None and bool((norm.running_var < 0).any()):
        raise ValueError(f"its weight '{name}.running_var' holds a negative variance")
    if norm.num_batches_tracked is not None and int(norm.num_batches_tracked) < 0:
        raise ValueError(
            f"its weight '{name}.num_batches_tracked' counts fewer than 0 batches"
        )


def all_finite(tensor: torch.Tensor) -> bool:
    """Check that a floating-point tensor holds no NaN or inf."""
    # In slices: a mask of the whole tensor would take a quarter of its size.
    return all(
        bool(torch.isfinite(part).all()) for part in tensor.reshape(-1).split(2**20)
    )
