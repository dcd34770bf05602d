"""
Two-dimensional codes of digits: autoencoder vs PCA
===================================================

Squeeze the 64 pixels of each of scikit-learn's 8x8 hand-written digits into two
numbers, once with :class:`~sklearn.decomposition.PCA` and once with
:class:`skae.AutoencoderTransformer`, and draw the codes coloured by the digit
they came from. Neither method sees the labels: they only colour the plot.

PCA can only project onto the plane of largest variance. The autoencoder bends
that plane, so digits that PCA piles on top of each other get room of their own.
"""

# %%
# Fit both reducers
# -----------------
# The autoencoder works on raw pixel values (0 to 16), as PCA does: it
# standardises its input during ``fit``. An ``int`` ``random_state`` makes the
# result identical from one run to the next.
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

X, y = load_digits(return_X_y=True)

pca = PCA(n_components=2, random_state=0)
autoencoder = AutoencoderTransformer(n_components=2, random_state=0)
codes = {"PCA": pca.fit_transform(X), "Autoencoder": autoencoder.fit_transform(X)}

# %%
# How well do the codes keep the digits apart?
# --------------------------------------------
# A picture is a matter of taste; a number is less so. The cross-validated
# accuracy of a 5-nearest-neighbours classifier *on the 2-D codes* measures how
# well each map keeps samples of one digit together and away from the others.
accuracy = {
    name: cross_val_score(KNeighborsClassifier(n_neighbors=5), Z, y, cv=5).mean()
    for name, Z in codes.items()
}
for name, score in accuracy.items():
    print(f"{name:>11}: 5-NN accuracy on the 2-D codes = {score:.3f}")

# %%
# Plot the codes
# --------------
# Each digit class gets its own colour, and its label is written at the
# median of its codes.
fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
colors = plt.cm.tab10(np.arange(10))
for ax, (name, Z) in zip(axes, codes.items(), strict=True):
    for digit in range(10):
        Z_digit = Z[y == digit]
        ax.scatter(*Z_digit.T, s=6, color=colors[digit], alpha=0.6, label=digit)
        ax.annotate(
            str(digit),
            np.median(Z_digit, axis=0),
            fontsize=14,
            fontweight="bold",
            ha="center",
            va="center",
            path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
        )
    ax.set_title(f"{name} (5-NN accuracy {accuracy[name]:.2f})")
    ax.set_xlabel("code 1")
    ax.set_ylabel("code 2")
axes[1].legend(title="digit", loc="center left", bbox_to_anchor=(1, 0.5), markerscale=3)
fig.suptitle("Digits (64 pixels) reduced to 2 numbers, coloured by label")
# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_digits_latent_space.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_digits_latent_space.png", dpi=100)
plt.show()
