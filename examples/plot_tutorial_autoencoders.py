"""
The Keras tutorial autoencoders, one line each
==============================================

Many users first meet autoencoders in the classic Keras tutorials. Their dense
model maps MNIST's 784 pixels (scaled to [0, 1]) through ``Dense(64, relu)``
to a code ``Dense(32, relu)``, and back through ``Dense(64, relu)`` to
``Dense(784, sigmoid)``, trained with Adam on the binary cross-entropy in
batches of 256 for 100 epochs; a regularised variant adds ``Dropout(0.5)``.
Each is one :class:`skae.AutoencoderTransformer` call, so it fits, transforms
and sits in a :class:`~sklearn.pipeline.Pipeline` like PCA.

``loss='binary_crossentropy'`` ends the decoder in a sigmoid in the input's
own units, so reconstructions are pixel intensities in [0, 1], and refuses
data outside [0, 1] at ``fit``; ``code_activation='relu'`` puts the tutorial's
relu on the code. A sigmoid output cannot compute PCA's reconstruction, so
these models start from random weights, as the tutorial's do, rather than
from skae's default PCA start.

We fit both tutorial models, skae's defaults and PCA, all with 32-number
codes, and measure side by side the test reconstruction error, the fit time
and how well a logistic regression classifies the digits from their codes.
The script looks for ``shared/data/mnist.npz`` (arrays ``x_train``,
``x_test``, ``y_train``, ``y_test``) in the working directory and the folders
above it, and falls back to scikit-learn's 8x8 digits.
"""

# %%
# Load the digits as flat rows of pixels in [0, 1]
# -------------------------------------------------
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer


def find_shared_file(name):
    """Return ``shared/data/<name>`` in the working directory or above, or None."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        path = folder / "shared" / "data" / name
        if path.is_file():
            return path
    return None


def load_images():
    """MNIST's training and test images if found, else scikit-learn's digits."""
    path = find_shared_file("mnist.npz")
    if path is not None:
        with np.load(path) as data:
            X_train, X_test = (
                data[part].reshape(len(data[part]), -1).astype(np.float32) / 255
                for part in ("x_train", "x_test")
            )
            return "MNIST", X_train, X_test, data["y_train"], data["y_test"], 28
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.astype(np.float32) / 16, y, test_size=0.3, random_state=0
    )
    return "8x8 digits", X_train, X_test, y_train, y_test, 8


name, X_train, X_test, y_train, y_test, side = load_images()
print(f"{name}: {len(X_train)} training and {len(X_test)} test images")

# %%
# The tutorial's models, and what they are compared with
# ------------------------------------------------------
# The tutorial trains 100 epochs at Adam's default rate of 1e-3, on all the
# training rows. To keep this example under a minute on two CPU cores, every
# network gets 4 epochs on MNIST (the tutorial's 100 on the small digits);
# ``benchmarks/bench_tutorial.py`` runs the full budget. skae applies dropout
# after the two 64-wide hidden layers, not on the code.
n_epochs = 4 if name == "MNIST" else 100
tutorial = {
    "n_components": 32,
    "hidden_layer_sizes": (64,),
    "code_activation": "relu",
    "loss": "binary_crossentropy",
    "batch_size": 256,
    "learning_rate": "constant",
    "learning_rate_init": 1e-3,
    "early_stopping": False,
    "max_iter": n_epochs,
    "random_state": 0,
}
models = {
    "tutorial": AutoencoderTransformer(**tutorial),
    "tutorial + dropout": AutoencoderTransformer(**tutorial, dropout=0.5),
    "skae defaults": AutoencoderTransformer(
        n_components=32, max_iter=n_epochs, random_state=0
    ),
    "PCA": PCA(n_components=32, random_state=0),
}

# %%
# Fit and measure, side by side
# -----------------------------
# Test MSE is in squared pixel units; the accuracy is that of a logistic
# regression trained on the training images' codes and tested on the test
# images' codes.
results = {}
for label, model in models.items():
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The tutorial trains a fixed number of epochs; so do we.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)
    seconds = time.perf_counter() - start
    codes_test = model.transform(X_test)
    mse = float(np.mean((model.inverse_transform(codes_test) - X_test) ** 2))
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier.fit(model.transform(X_train), y_train)
    accuracy = classifier.score(codes_test, y_test)
    results[label] = (mse, seconds, accuracy)

print(f"{'32-number codes':<20} {'test MSE':>9} {'fit s':>6} {'accuracy':>9}")
for label, (mse, seconds, accuracy) in results.items():
    print(f"{label:<20} {mse:9.4f} {seconds:6.1f} {accuracy:9.3f}")

# %%
# skae's defaults, which start from PCA with a wider network and a cosine
# learning-rate schedule, reconstruct best, at several times the tutorial
# model's cost per epoch. The tutorial's small network is already near PCA
# after a few epochs, and its relu codes serve a linear classifier at least as
# well as PCA's. Dropout at 0.5 on layers only 64 wide costs reconstruction
# quality, at least over a few epochs.

# %%
# Ten test digits over their reconstructions
# ------------------------------------------
# The tutorial's figure, for its dense model: the sigmoid keeps every
# reconstructed pixel in [0, 1], the range of the originals.
reconstructions = models["tutorial"].inverse_transform(
    models["tutorial"].transform(X_test[:10])
)
fig, axes = plt.subplots(2, 10, figsize=(10, 2.4), layout="constrained")
for index in range(10):
    for ax, images in zip(axes[:, index], (X_test, reconstructions), strict=True):
        ax.imshow(images[index].reshape(side, side), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_ylabel("original")
axes[1, 0].set_ylabel("tutorial")
fig.suptitle(f"{name}: the tutorial's autoencoder after {n_epochs} epochs")

# Run as a script (not in the documentation's gallery), it also saves the figure.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("tutorial_autoencoders.png", dpi=100)
plt.show()
