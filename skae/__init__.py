# SPDX-License-Identifier: BSD-3-Clause
"""skae: scikit-learn compatible autoencoders with a PyTorch core."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from skae._version import __version__

if TYPE_CHECKING:
    from skae._autoencoder import AutoencoderTransformer
    from skae._compare import compare
    from skae._onnx import register_onnx_converters
    from skae._outlier import AutoencoderOutlierDetector
    from skae._persistence import load, save
    from skae._scoring import reconstruction_scorer
    from skae._threads import fixed_threads
    from skae._training import EpochReport, epoch_callback
    from skae._variational import VariationalAutoencoder

# Each public name and the module defining it, imported on first use: torch
# takes seconds to import, and the ``skae`` command must answer Ctrl-C (and
# ``--help``) before that.
_MODULES = {
    "AutoencoderOutlierDetector": "skae._outlier",
    "AutoencoderTransformer": "skae._autoencoder",
    "EpochReport": "skae._training",
    "VariationalAutoencoder": "skae._variational",
    "compare": "skae._compare",
    "epoch_callback": "skae._training",
    "fixed_threads": "skae._threads",
    "load": "skae._persistence",
    "reconstruction_scorer": "skae._scoring",
    "register_onnx_converters": "skae._onnx",
    "save": "skae._persistence",
}

__all__ = [
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "EpochReport",
    "VariationalAutoencoder",
    "__version__",
    "compare",
    "epoch_callback",
    "fixed_threads",
    "load",
    "reconstruction_scorer",
    "register_onnx_converters",
    "save",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    if name not in _MODULES:
        raise AttributeError(f"module 'skae' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
