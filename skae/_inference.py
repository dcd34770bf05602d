# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: fitted modules in the form inference runs them.

A fitted encoder is ``Sequential(Standardize, network)`` and a decoder
``Sequential(network, Unstandardize)``: two extra passes over every batch,
each as large as the input or the output. Both maps are affine, so they fold
into the first (encoder) or last (decoder) linear layers of a copy, computed
in float64 and then cast. Networks whose ends are not linear layers (a
convolution first, an activation last) run unfolded. Folding rounds
differently from the unfolded modules: results agree to about 1e-7 relative
in float32, not bit for bit.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

from skae._data import iter_row_batches
from skae._networks import LinearWithResidual, RowSquaredError, all_finite
from skae._standardization import Standardize, Unstandardize

# Fitted module -> {(dtype, device): (weights' signature, inference module)}.
_cache: weakref.WeakKeyDictionary[nn.Module, dict[Any, Any]] = (
    weakref.WeakKeyDictionary()
)


def inference_module(
    module: nn.Module, device: torch.device, dtype: torch.dtype
) -> nn.Module:
    """Return ``module`` as inference runs it on ``device`` in ``dtype``.

    The result is cached until a weight of ``module`` changes (in place, or
    by loading a state); the fitted module itself is never modified.
    """
    if isinstance(module, RowSquaredError):
        # Cached under the encoder, so that repeated calls get the same module.
        key_module, key = module.encoder, ("errors", dtype, device)
        parts = (module.encoder, module.decoder)
    else:
        key_module, key, parts = module, (dtype, device), (module,)
    signature = tuple(
        (tensor.data_ptr(), tensor._version)
        for part in parts
        for tensor in part.state_dict().values()
    )
    entries = _cache.setdefault(key_module, {})
    if key in entries and entries[key][0] == signature:
        return entries[key][1]  # type: ignore[no-any-return]
    result: nn.Module | None
    if isinstance(module, RowSquaredError):
        encoder = inference_module(module.encoder, device, dtype)
        decoder = inference_module(module.decoder, device, dtype)
        result = RowSquaredError(encoder, decoder)
        unchanged = encoder is module.encoder or decoder is module.decoder
    else:
        result = _folded(module)
        unchanged = result is None
        if result is None and device.type == "cpu" and dtype == torch.float32:
            result = module
        elif result is None:
            # A copy, so that the fitted module stays on the CPU in float32.
            result = copy.deepcopy(module)
    result = result.to(device, dtype).eval()
    # A cached module holding the fitted one would keep it alive forever.
    if not unchanged:
        entries[key] = (signature, result)
    return result


def _folded(module: nn.Module) -> nn.Module | None:
    """Copy in float64 with the standardisation folded in; None if it cannot."""
    if not isinstance(module, nn.Sequential) or len(module) != 2:
        return None
    first, last = module[0], module[1]
    if type(first) is Standardize and _end_linear_layers(last, 0):
        network = copy.deepcopy(last).double()
        first.fold_into(_end_linear_layers(network, 0))
        # The residual's clipping of its standardised input, in input units.
        path = _input_path(network)
        if path is not None:
            path.input_range.to_input_units(first.mean.double(), first.scale.double())
        return network
    if type(last) is Unstandardize and _end_linear_layers(first, -1):
        network = copy.deepcopy(first).double()
        last.fold_into(_end_linear_layers(network, -1))
        return network
    return None


def _end_linear_layers(module: nn.Module, end: int) -> list[nn.Linear]:
    """Linear layers at one end of a module, or [] if some other layer is there.

    ``end=0``: the layers that see the module's input; ``end=-1``: those whose
    outputs, summed, are its output.
    """
    if isinstance(module, nn.Linear):
        return [module] if module.bias is not None else []
    if isinstance(module, LinearWithResidual):
        residual = _end_linear_layers(module.residual, end)
        return [module.linear, *residual] if residual else []
    if isinstance(module, nn.Sequential) and len(module) > 0:
        return _end_linear_layers(module[end], end)
    return []


def _input_path(module: nn.Module) -> LinearWithResidual | None:
    """Return the linear path with a residual that reads the module's input, if any."""
    while isinstance(module, nn.Sequential) and len(module) > 0:
        module = module[0]
    return module if isinstance(module, LinearWithResidual) else None


def finite_output(output: np.ndarray, dtype: np.dtype, module: nn.Module) -> np.ndarray:
    """Refuse inf or NaN computed from finite, validated input: an overflow."""
    # Batch by batch: a mask of the whole output would be as large as X is.
    if not all(np.isfinite(rows).all() for _, _, rows in iter_row_batches(output)):
        if not all(all_finite(tensor) for tensor in module.state_dict().values()):
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
