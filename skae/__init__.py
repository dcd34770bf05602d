# SPDX-License-Identifier: BSD-3-Clause
"""skae: scikit-learn compatible autoencoders with a PyTorch core."""

from skae._autoencoder import AutoencoderTransformer
from skae._compare import compare
from skae._persistence import load, save

__version__ = "0.1.0"

__all__ = ["AutoencoderTransformer", "__version__", "compare", "load", "save"]
