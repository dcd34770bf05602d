# SPDX-License-Identifier: BSD-3-Clause
"""skae: scikit-learn compatible autoencoders with a PyTorch core."""

from skae._autoencoder import AutoencoderTransformer
from skae._compare import compare
from skae._onnx import register_onnx_converters
from skae._outlier import AutoencoderOutlierDetector
from skae._persistence import load, save
from skae._scoring import reconstruction_scorer
from skae._threads import fixed_threads
from skae._training import EpochReport, epoch_callback
from skae._variational import VariationalAutoencoder
from skae._version import __version__

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
