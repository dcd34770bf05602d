# SPDX-License-Identifier: BSD-3-Clause
"""The memory a network would take to train, checked before it is allocated.

A width of ``10**8`` or ``n_components=10**9`` asks torch for tens of
gigabytes, which fails deep inside torch (or, on a machine that overcommits,
much later). So ``fit`` first counts what the network needs, built on torch's
``meta`` device, which allocates nothing, and refuses with a message that
names the parameter and the memory when the machine cannot hold it.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Callable
from itertools import pairwise
from numbers import Integral
from pathlib import Path
from typing import Any

import torch
from torch import nn

from skae._checks import positive_ints

# Copies of each weight that training holds at once: the weights, their
# gradients, two Adam moments, the best epoch's and the start's weights.
WEIGHT_COPIES = 6
# Training keeps every layer's output of a batch for the backward pass, which
# needs as much again.
ACTIVATION_COPIES = 2
_FLOAT32_BYTES = 4
_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")


def check_network_size(
    build: Callable[[dict[str, Any], int, int], nn.Module],
    architecture: dict[str, Any],
    n_samples: int,
    n_features: int,
    batch_size: int,
    device: torch.device,
) -> None:
    """Refuse a network whose training would not fit in the device's memory.

    ``build(architecture, n_features, n_components)`` builds the network;
    a user's ``network`` factory is not counted (its code may need real
    tensors). Raises ValueError naming the parameter to lower.
    """
    if architecture.get("network") is not None:
        return
    n_components = architecture["n_components"]
    if not isinstance(n_components, Integral):
        n_components = min(n_samples, n_features)  # PCA's size at most
    n_components = int(n_components)
    hidden = positive_ints(architecture["hidden_layer_sizes"], "hidden_layer_sizes")
    limit = memory_limit(device)
    # Exact ints, no tensor: a lower bound, enough to refuse absurd widths.
    first = [n_features] if architecture.get("image_shape") is None else []
    widths = [*first, *hidden, n_components]
    n_weights = 2 * sum(a * b for a, b in pairwise(widths))
    if n_weights * WEIGHT_COPIES * _FLOAT32_BYTES <= limit:
        n_weights, n_activations = _count(
            build, architecture, n_features, n_components, min(batch_size, n_samples)
        )
    else:
        n_activations = 0
    needed = _FLOAT32_BYTES * (
        n_weights * WEIGHT_COPIES + n_activations * ACTIVATION_COPIES
    )
    if needed > limit:
        raise ValueError(_too_large(architecture, n_features, n_weights, needed, limit))


def _count(
    build: Callable[[dict[str, Any], int, int], nn.Module],
    architecture: dict[str, Any],
    n_features: int,
    n_components: int,
    n_rows: int,
) -> tuple[int, int]:
    """Weights of the network, and the layer outputs of one training batch."""
    n_activations = 0

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal n_activations
        if isinstance(output, torch.Tensor):
            n_activations += output.numel()

    # The meta device draws nothing from torch's random generators.
    with torch.device("meta"):
        network = build(architecture, n_features, n_components)
        hooks = [
            module.register_forward_hook(count)
            for module in network.modules()
            if not list(module.children())
        ]
        # Evaluation mode: batch norm counts the same, and takes a single row.
        network.eval()
        with torch.no_grad():
            network(torch.empty(n_rows, n_features, dtype=torch.float32))
    for hook in hooks:
        hook.remove()
    return sum(tensor.numel() for tensor in network.parameters()), n_activations


def _too_large(
    architecture: dict[str, Any],
    n_features: int,
    n_weights: int,
    needed: int,
    limit: int,
) -> str:
    names = ["n_components", "hidden_layer_sizes"]
    if architecture.get("image_shape") is not None:
        names.append("conv_channels")
    widest = {
        name: max(positive_ints(architecture[name], name), default=0) for name in names
    }
    culprit = max(widest, key=lambda name: widest[name])
    described = ", ".join(f"{name}={_brief(architecture[name])}" for name in names)
    advice = (
        f"lower {culprit}"
        if widest[culprit] >= n_features
        else "reduce the features first (PCA in a Pipeline, say) or use smaller layers"
    )
    return (
        f"{culprit}={_brief(architecture[culprit])} makes a network too large to "
        f"train: with {described} and {n_features} features it has "
        f"{count_words(n_weights)} weights and would take about "
        f"{memory_words(needed)} of memory, more than the {memory_words(limit)} "
        f"this process may use; {advice}."
    )


def _brief(value: Any) -> str:
    """Write a width, or a sequence of widths, with huge ints in brief."""
    if isinstance(value, Integral):
        return str(value) if value < 10**15 else count_words(int(value))
    widths = positive_ints(value, "widths")
    text = ", ".join(_brief(width) for width in widths[:8])
    return f"({text}{', ...' if len(widths) > 8 else ''}{',' * (len(widths) == 1)})"


def memory_limit(device: torch.device) -> int:
    """Bytes a process may allocate on ``device``: RAM, or the GPU's memory.

    The smallest of the machine's memory, a cgroup limit (containers) and an
    address-space limit (``ulimit -v``) beyond what is already mapped.
    """
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    try:
        text = _CGROUP_LIMIT.read_text().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    address_space, _ = resource.getrlimit(resource.RLIMIT_AS)
    if address_space != resource.RLIM_INFINITY:
        limits.append(max(0, address_space - _mapped_bytes()))
    return min(limits)


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def count_words(number: int) -> str:
    """Write a count of any size briefly: 12,800 or 2.6e+11."""
    if number < 10**6:
        return f"{number:,}"
    if number < 10**300:
        return f"{number:.2g}"
    # Digits from the bit length: a float has no room for it.
    return f"1e{int(number.bit_length() * math.log10(2))}"


def memory_words(n_bytes: int) -> str:
    """Write a number of bytes in binary units: 64.0 GiB."""
    for power, unit in ((5, "PiB"), (4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        if n_bytes >= 1024**power:
            if n_bytes >= 10**6 * 1024**power:
                break
            return f"{n_bytes / 1024**power:.1f} {unit}"
    return f"{count_words(n_bytes)} bytes"
