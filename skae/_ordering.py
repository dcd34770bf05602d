# SPDX-License-Identifier: BSD-3-Clause
"""Torch core: what a trained code keeps, and its columns in order of importance.

A code column's importance is the share of the data's variance lost when the
column is held at its mean: decode the codes with that one column replaced
by its mean over the rows, and divide the rise in the squared
reconstruction error by the data's total squared deviation from the mean.
For PCA (a linear code of orthonormal axes) that is each component's
``explained_variance_ratio_``. Ordering permutes the layers that write the
codes and those that read them, so the network computes the same
reconstructions, to float rounding, with the columns in that order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from skae._data import batch_bounds
from skae._networks import (
    ACTIVATIONS,
    AutoencoderNet,
    LinearWithResidual,
    SigmoidDecoder,
    VariationalNet,
)
from skae._training import row_errors

# Rows the importances are measured on, at most: k decodings of each cost
# more than a training epoch's pass over them would.
IMPORTANCE_ROWS = 2048
# Rows decoded at once, one copy of them per code column.
DECODE_BATCH_SIZE = 4096
# Entries of the rows measured, and of those decoded at once, at most: wide
# data (a vocabulary of tens of thousands of words) measures on fewer rows.
IMPORTANCE_ELEMENTS = 2**22
_ELEMENTWISE = tuple(ACTIVATIONS.values())


def importance_rows(n_rows: int, n_features: int) -> torch.Tensor:
    """Return evenly spaced indices of ``n_rows``, as many as the bounds allow.

    At most :data:`IMPORTANCE_ROWS` rows and :data:`IMPORTANCE_ELEMENTS`
    entries of ``n_features`` each.
    """
    n_chosen = min(n_rows, IMPORTANCE_ROWS, max(1, IMPORTANCE_ELEMENTS // n_features))
    return torch.linspace(0, n_rows - 1, n_chosen, dtype=torch.float64).round().long()


@torch.inference_mode()
def code_importances(network: AutoencoderNet, X: torch.Tensor) -> torch.Tensor:
    """Return each code column's importance on standardised rows X.

    The share of X's variance lost when that column is held at its mean over
    the rows: float64 values, one per column, on the CPU.
    """
    network.eval()
    codes = network.code_path()(X)
    n_rows, n_components = codes.shape
    means = codes.mean(dim=0)
    total = float(torch.mean(X.double() ** 2))
    base = float(row_errors(network, X).double().mean())
    rises = torch.zeros(n_components, dtype=torch.float64)
    # Every column's copy of a batch of rows, decoded in one call.
    rows_per_batch = max(
        1,
        min(DECODE_BATCH_SIZE, IMPORTANCE_ELEMENTS // X.shape[1]) // n_components,
    )
    for start, stop in batch_bounds(n_rows, rows_per_batch):
        held = codes[start:stop].repeat(n_components, 1)
        blocks = held.view(n_components, stop - start, n_components)
        for column in range(n_components):
            blocks[column, :, column] = means[column]
        decoded = network.decoder(held).view(n_components, stop - start, -1)
        # In place and summed in float64 without a float64 copy: on large
        # codes these passes cost more than decoding.
        errors = decoded.sub_(X[start:stop]).square_()
        rises += errors.sum(dim=(1, 2), dtype=torch.float64).cpu()
    mean_errors = rises / (n_rows * X.shape[1])
    if total == 0:
        return torch.zeros(n_components, dtype=torch.float64)
    return (mean_errors - base) / total


def code_layers(network: AutoencoderNet) -> tuple[list[nn.Linear], list[nn.Linear]]:
    """Return the linear layers that write the codes and those that read them.

    ``([], [])`` for a network whose ends are not linear layers skae built
    (a user's modules): its columns cannot be reordered.
    """
    written = _end_layers(network.encoder, -1)
    read = _end_layers(network.decoder, 0)
    if not written or not read:
        return [], []
    return written, read


def _end_layers(module: nn.Module, end: int) -> list[nn.Linear]:
    """Linear layers at one end of skae's own modules; [] for anything else.

    ``end=-1``: the layers whose summed outputs are the module's output,
    past element-wise activations (a code activation); ``end=0``: those that
    read its input.
    """
    if type(module) is nn.Linear:
        return [module]
    if type(module) is LinearWithResidual:
        residual = _end_layers(module.residual, end)
        return [module.linear, *residual] if residual else []
    if type(module) is SigmoidDecoder:
        return _end_layers(module.logits, end)
    if type(module) is nn.Sequential and len(module) > 0:
        layers = list(module)
        if end == -1:
            while len(layers) > 1 and type(layers[-1]) in _ELEMENTWISE:
                layers.pop()
        return _end_layers(layers[end], end)
    return []


@torch.no_grad()
def order_code_columns(
    network: AutoencoderNet,
    order: torch.Tensor,
    optimizer_state: dict[str, Any] | None,
) -> bool:
    """Put the network's code columns in ``order``, in place; False if it cannot.

    The solver's state (moments, momentum) follows the weights it belongs
    to, so that training resumes as if the columns had always been in this
    order.
    """
    written, read = code_layers(network)
    if not written:
        return False
    rows = order
    if isinstance(network, VariationalNet):
        # Means, then log-variances: the same order for both halves.
        rows = torch.cat([order, order + len(order)])
    moves: dict[int, tuple[int, torch.Tensor]] = {}
    for layer in written:
        moves[id(layer.weight)] = (0, rows)
        moves[id(layer.bias)] = (0, rows)
    for layer in read:
        moves[id(layer.weight)] = (1, order)
    parameters = list(network.parameters())
    states = {} if optimizer_state is None else optimizer_state["state"]
    for index, parameter in enumerate(parameters):
        if id(parameter) not in moves:
            continue
        dim, permutation = moves[id(parameter)]
        parameter.copy_(parameter.index_select(dim, permutation.to(parameter.device)))
        for name, value in states.get(index, {}).items():
            if torch.is_tensor(value) and value.shape == parameter.shape:
                states[index][name] = value.index_select(
                    dim, permutation.to(value.device)
                )
    return True
