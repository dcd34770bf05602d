"""
Reconstructions from 8 numbers: autoencoder vs PCA
==================================================

Both :class:`~sklearn.decomposition.PCA` and
:class:`skae.AutoencoderTransformer` compress each 8x8 digit to a code of
``k = 8`` numbers and decode it back to 64 pixels with ``inverse_transform``.
The better the decoder, the closer the reconstruction to the original. Both are
fitted on a training split and judged on digits they have not seen.
"""

# %%
# Fit on the training digits
# --------------------------
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

n_components = 8
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

reducers = {
    "PCA": PCA(n_components=n_components, random_state=0),
    "Autoencoder": AutoencoderTransformer(n_components=n_components, random_state=0),
}
reconstructions = {"Original": X_test}
for name, reducer in reducers.items():
    reducer.fit(X_train)
    reconstructions[name] = reducer.inverse_transform(reducer.transform(X_test))

# %%
# Test error
# ----------
# The mean squared error per pixel, in the original units (pixel values run
# from 0 to 16). For the autoencoder it is also minus its :meth:`score
# <skae.AutoencoderTransformer.score>`, which is what a grid search maximises.
test_mse = {
    name: np.mean((X_rec - X_test) ** 2)
    for name, X_rec in reconstructions.items()
    if name != "Original"
}
for name, mse in test_mse.items():
    print(f"{name:>11}: test MSE = {mse:.2f}")
print(f"Autoencoder: -score    = {-reducers['Autoencoder'].score(X_test):.2f}")

# %%
# Look at the reconstructions
# ---------------------------
# One test digit of each class, top to bottom: the original, then its
# reconstructions from 8 numbers.
first_of_each = [np.flatnonzero(y_test == digit)[0] for digit in range(10)]
fig, axes = plt.subplots(3, 10, figsize=(10, 3.8), layout="constrained")
for row, (name, X_rec) in zip(axes, reconstructions.items(), strict=True):
    for ax, index in zip(row, first_of_each, strict=True):
        ax.imshow(X_rec[index].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
        ax.set_xticks([])
        ax.set_yticks([])
    label = name if name == "Original" else f"{name}\nMSE {test_mse[name]:.2f}"
    row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=11)
fig.suptitle(f"Test digits and their reconstructions from k={n_components} numbers")
# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_reconstructions_vs_pca.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_reconstructions_vs_pca.png", dpi=100)
plt.show()
