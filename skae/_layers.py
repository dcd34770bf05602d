# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: the encoder and decoder layers an architecture describes.

Dense stacks, convolutions for images, or a user's ``network`` factory
(:func:`build_layers`); each variant puts its own modules around them (a
linear path, a code activation, a sigmoid decoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from numbers import Integral
from typing import Any

import numpy as np
from torch import nn

from skae._checks import positive_ints
from skae._networks import ACTIVATIONS


def build_layers(
    architecture: dict[str, Any], n_features: int, n_outputs: int, n_components: int
) -> tuple[nn.Module, nn.Module]:
    """Build the encoder (to ``n_outputs``) and decoder layers of an architecture.

    A user's ``network`` factory, else convolutions for ``image_shape``, else
    dense layers; what a variant adds around them is its own.
    """
    if architecture["network"] is not None:
        return module_pair(architecture["network"](n_features, n_outputs))
    options = {
        "activation": architecture["activation"],
        "dropout": architecture["dropout"],
        "batch_norm": architecture["batch_norm"],
    }
    hidden = positive_ints(architecture["hidden_layer_sizes"], "hidden_layer_sizes")
    if architecture["image_shape"] is not None:
        return build_convolutional(
            image_shape_of(architecture["image_shape"], n_features),
            n_outputs,
            n_components,
            positive_ints(architecture["conv_channels"], "conv_channels"),
            hidden,
            **options,
        )
    return build_dense(n_features, n_outputs, n_components, hidden, **options)


def dense_stack(
    sizes: Sequence[int],
    *,
    activation: str,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Build linear layers through ``sizes``, with extras between them.

    Every layer but the last is followed by batch norm (optional), the
    activation and dropout (optional). The last layer stays linear, so codes
    and reconstructions are unbounded, as PCA's are.
    """
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(pairwise(sizes)):
        if index > 0:
            layers += _extras(n_in, activation, dropout, batch_norm, nn.BatchNorm1d)
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def _extras(
    width: int,
    activation: str,
    dropout: float,
    batch_norm: bool,
    norm: type[nn.Module],
) -> list[nn.Module]:
    """Layers after a hidden linear or convolutional layer."""
    extras = [norm(width)] if batch_norm else []
    extras.append(ACTIVATIONS[activation]())
    if dropout > 0:
        extras.append(nn.Dropout(dropout))
    return extras


def build_dense(
    n_features: int,
    n_encoder_outputs: int,
    n_components: int,
    hidden_layer_sizes: Sequence[int],
    *,
    activation: str,
    dropout: float,
    batch_norm: bool,
) -> tuple[nn.Module, nn.Module]:
    """Dense encoder and decoder; the decoder mirrors the encoder's widths."""
    options = {"activation": activation, "dropout": dropout, "batch_norm": batch_norm}
    encoder = dense_stack(
        [n_features, *hidden_layer_sizes, n_encoder_outputs], **options
    )
    decoder = dense_stack(
        [n_components, *hidden_layer_sizes[::-1], n_features], **options
    )
    return encoder, decoder


def build_convolutional(
    image_shape: Sequence[int],
    n_encoder_outputs: int,
    n_components: int,
    conv_channels: Sequence[int],
    hidden_layer_sizes: Sequence[int],
    *,
    activation: str,
    dropout: float,
    batch_norm: bool,
) -> tuple[nn.Module, nn.Module]:
    """Convolutional encoder and decoder for flat rows of ``image_shape`` images.

    Each convolution (3x3, stride 2) halves height and width, then dense
    ``hidden_layer_sizes`` lead to the code. The decoder mirrors it with
    transposed convolutions that restore the exact image size.
    """
    channels, height, width = image_shape
    sizes = [(height, width)]
    for _ in conv_channels:
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    widths = [channels, *conv_channels]
    options = {"activation": activation, "dropout": dropout, "batch_norm": batch_norm}
    n_flat = widths[-1] * sizes[-1][0] * sizes[-1][1]

    encoder: list[nn.Module] = [nn.Unflatten(1, (channels, height, width))]
    for n_in, n_out in pairwise(widths):
        encoder += [
            nn.Conv2d(n_in, n_out, kernel_size=3, stride=2, padding=1),
            *_extras(n_out, activation, 0.0, batch_norm, nn.BatchNorm2d),
        ]
    encoder += [
        nn.Flatten(),
        dense_stack([n_flat, *hidden_layer_sizes, n_encoder_outputs], **options),
    ]

    decoder: list[nn.Module] = [
        dense_stack([n_components, *hidden_layer_sizes[::-1], n_flat], **options)
    ]
    if conv_channels:
        decoder += [
            *_extras(n_flat, activation, dropout, batch_norm, nn.BatchNorm1d),
            nn.Unflatten(1, (widths[-1], *sizes[-1])),
        ]
    n_layers = len(widths) - 1
    for index, (n_in, n_out) in enumerate(pairwise(widths[::-1])):
        target = sizes[n_layers - index - 1]
        source = sizes[n_layers - index]
        padding = (target[0] - 2 * source[0] + 1, target[1] - 2 * source[1] + 1)
        decoder.append(
            nn.ConvTranspose2d(
                n_in, n_out, kernel_size=3, stride=2, padding=1, output_padding=padding
            )
        )
        if index < n_layers - 1:
            decoder += _extras(n_out, activation, 0.0, batch_norm, nn.BatchNorm2d)
    decoder.append(nn.Flatten())
    return nn.Sequential(*encoder), nn.Sequential(*decoder)


def module_pair(result: Any) -> tuple[nn.Module, nn.Module]:
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


def image_shape_of(values: Any, n_features: int) -> tuple[int, ...]:
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
    image_shape = positive_ints(shape, "image_shape")
    if len(image_shape) != 3 or np.prod(image_shape) != n_features:
        raise mismatch
    return image_shape
