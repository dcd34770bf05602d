"""
Denoising autoencoder: restoring corrupted digits
=================================================

A denoising autoencoder is trained to reconstruct *clean* samples from
*corrupted* copies of them, so it learns what digits look like rather than how
to copy its input. :class:`skae.AutoencoderTransformer` does this with the
``noise`` parameter: ``'gaussian'`` adds random noise to the encoder's input
during training, ``'mask'`` replaces a random share of the entries with their
feature's mean; ``noise_level`` sets how much. The target stays clean.

Here we corrupt test digits in two ways, Gaussian noise and missing pixels, and
compare how close to the *clean* digits three models bring them:
:class:`~sklearn.decomposition.PCA`, a plain autoencoder and denoising
autoencoders. All have a code of 8 numbers and never see a corrupted test digit
during training.
"""

# %%
# Fit PCA, a plain and two denoising autoencoders on clean digits
# ---------------------------------------------------------------
# Pixels are scaled to [0, 1]. ``noise_level`` is in units of the data's
# scale (the root mean square of the centred pixels, about 0.27 here), so
# ``noise_level=1.0`` trains on noise of about the strength we test with.
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X / 16.0, test_size=0.3, random_state=0)

options = {"n_components": 8, "max_iter": 100, "random_state": 0}
models = {
    "PCA": PCA(n_components=8, random_state=0),
    "plain AE": AutoencoderTransformer(**options),
    "denoising AE (gaussian)": AutoencoderTransformer(
        noise="gaussian", noise_level=1.0, **options
    ),
    "denoising AE (mask)": AutoencoderTransformer(
        noise="mask", noise_level=0.5, **options
    ),
}
# One fixed budget of 100 epochs for every autoencoder keeps the comparison
# fair; those still improving at the end warn that they reached it, as
# expected here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for model in models.values():
        model.fit(X_train)

# %%
# Corrupt the test digits
# -----------------------
# Gaussian noise of standard deviation 0.3, and half of the pixels lost and
# filled with the training mean of each pixel (the usual stopgap for missing
# values, and what ``noise='mask'`` imitates).
rng = np.random.RandomState(0)
corrupted = {
    "gaussian noise": X_test + 0.3 * rng.normal(size=X_test.shape),
    "missing pixels": np.where(
        rng.uniform(size=X_test.shape) < 0.5, X_train.mean(axis=0), X_test
    ),
}

# %%
# How close to the clean digits?
# ------------------------------
# The mean squared error between each model's reconstruction of the corrupted
# digits and the clean digits. Each denoising autoencoder wins on the
# corruption it was trained for, by a wide margin.
restored = {
    corruption: {
        name: model.inverse_transform(model.transform(X_noisy))
        for name, model in models.items()
    }
    for corruption, X_noisy in corrupted.items()
}
errors = {
    corruption: {
        name: np.mean((X_restored - X_test) ** 2)
        for name, X_restored in by_model.items()
    }
    for corruption, by_model in restored.items()
}
for corruption, by_model in errors.items():
    noisy_error = np.mean((corrupted[corruption] - X_test) ** 2)
    print(f"{corruption} (corrupted input: MSE {noisy_error:.4f})")
    for name, error in by_model.items():
        print(f"  {name:>24}: MSE {error:.4f}")

# %%
# Look at them
# ------------
# For each corruption: the clean digits, the corrupted ones, then each model's
# reconstruction of the corrupted ones.
shown = np.arange(8)
fig, axes = plt.subplots(
    12, len(shown), figsize=(7, 11), layout="constrained", squeeze=False
)
row = 0
for corruption, by_model in restored.items():
    rows = {"clean": X_test, corruption: corrupted[corruption], **by_model}
    for name, images in rows.items():
        for ax, index in zip(axes[row], shown, strict=True):
            ax.imshow(images[index].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        label = name.replace(" (", "\n(")
        if name in errors[corruption]:
            label += f"\nMSE {errors[corruption][name]:.4f}"
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        row += 1
fig.suptitle("Corrupted test digits restored by PCA and autoencoders (k=8)")

# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_denoising.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_denoising.png", dpi=100)
plt.show()
