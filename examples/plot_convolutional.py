"""
Convolutional autoencoder for images
====================================

A dense autoencoder sees an image as a bag of unrelated pixels. A
convolutional one knows which pixels are neighbours: its filters slide over the
image and reuse the same weights everywhere, so strokes and edges are learnt
once, wherever they occur. Set ``image_shape=(channels, height, width)`` and
:class:`skae.AutoencoderTransformer` encodes each row as an image with
convolutions (and decodes with transposed convolutions). Rows still go in and
come out flat, so it sits in a :class:`~sklearn.pipeline.Pipeline` like any
transformer.

We compare a dense and a convolutional autoencoder with the same code size,
the same data and the same number of epochs on MNIST's 28x28 handwritten
digits. The script looks for ``mnist.npz`` in a ``shared/data`` folder beside
the repository (arrays ``x_train``, ``x_test`` of 8-bit images) and falls back
to scikit-learn's 8x8 digits, where convolutions have little room to help.
"""

# %%
# Load images as flat rows
# ------------------------
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()


def load_images(n_train=5000, n_test=1000):
    """MNIST rows scaled to [0, 1] if present beside the repository, else digits."""
    path = HERE.parents[1] / "shared" / "data" / "mnist.npz"
    if path.exists():
        with np.load(path) as data:
            X_train = data["x_train"][:n_train].reshape(n_train, -1) / 255.0
            X_test = data["x_test"][:n_test].reshape(n_test, -1) / 255.0
        return "MNIST", X_train, X_test, (28, 28)
    X, _ = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.3, random_state=0)
    return "8x8 digits", X_train, X_test, (8, 8)


name, X_train, X_test, (height, width) = load_images()
print(f"{name}: {X_train.shape[0]} training and {X_test.shape[0]} test images")

# %%
# Same code size, same budget
# ---------------------------
# Both models get a 16-number code, one dense hidden layer of 256 units and
# the same number of epochs; the convolutional one adds two 3x3 convolutions
# (32 and 64 channels, each halving the image) in front of it.
budget = {
    "n_components": 16,
    "hidden_layer_sizes": (256,),
    "max_iter": 10 if name == "MNIST" else 60,
    "random_state": 0,
}
models = {
    "dense": AutoencoderTransformer(**budget),
    "convolutional": AutoencoderTransformer(
        image_shape=(1, height, width), conv_channels=(32, 64), **budget
    ),
}
errors = {}
for label, model in models.items():
    start = time.perf_counter()
    # The fixed budget is the point of the comparison: both models stop at
    # max_iter before converging, so their ConvergenceWarning says nothing new.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)
    seconds = time.perf_counter() - start
    errors[label] = -model.score(X_test)
    print(f"{label:>13}: test MSE {errors[label]:.4f}  ({seconds:.0f} s to fit)")

# %%
# The convolutional model costs more per epoch on a CPU but, epoch for epoch,
# reconstructs MNIST's test digits better. Its fitted ``encoder_`` shows the
# layers:
print(models["convolutional"].encoder_)

# %%
# Reconstructions of test images
# ------------------------------
shown = np.arange(10)
rows = {"original": X_test}
rows.update(
    {
        label: model.inverse_transform(model.transform(X_test))
        for label, model in models.items()
    }
)
fig, axes = plt.subplots(3, len(shown), figsize=(10, 3.6), layout="constrained")
for row_axes, (label, images) in zip(axes, rows.items(), strict=True):
    for ax, index in zip(row_axes, shown, strict=True):
        ax.imshow(images[index].reshape(height, width), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    if label in errors:
        label = f"{label}\nMSE {errors[label]:.4f}"
    row_axes[0].set_ylabel(label, rotation=0, ha="right", va="center")
fig.suptitle(f"{name}: reconstructions from 16 numbers, same number of epochs")

# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_convolutional.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_convolutional.png", dpi=100)
plt.show()
