"""
Autoencoder against PCA in one call
===================================

:func:`skae.compare` answers the first question about an autoencoder: how much
better than PCA does it reconstruct *this* data, and at what cost? It splits X
into a training and a test part, fits PCA and
:class:`skae.AutoencoderTransformer` for each code size, and returns one table
row per (method, k) with the test reconstruction error, the fit and transform
times and, given labels, the accuracy of a classifier trained on the codes.
The ``skae compare`` command does the same from the shell and draws the
figures (see the command-line page of the documentation).
"""

# %%
# One table for several code sizes
# --------------------------------
# The digits: 1,797 images of 8x8 pixels, with labels. ``variance=0.9`` adds a
# row per method with the smallest code that explains 90% of the test
# variance, the way ``n_components=0.9`` reads a fraction.
import sys
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skae import compare

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

X, y = load_digits(return_X_y=True)
table = compare(X, y, n_components=[2, 8, 16], variance=0.9, random_state=0)
columns = ["method", "n_components", "test_mse", "test_r2", "test_accuracy"]
print(table[[*columns, "fit_seconds"]].round(3).to_string(index=False))

# %%
# The autoencoder reconstructs held-out digits with a fraction of PCA's error
# at every size, and needs fewer components for 90% of the variance. Its codes
# serve a classifier much better at k=2 and about as well once the code has
# room for the labels (k=16). The
# price is the fit: seconds against PCA's milliseconds (the ``fit_seconds``
# column; the timing columns vary from run to run, the rest is repeatable
# with an int ``random_state``).
#
# Error and accuracy against k
# ----------------------------
fixed = table[table["target_r2"].isna()]
fig, (ax_mse, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
for method, rows in fixed.groupby("method", sort=False):
    ax_mse.plot(rows["n_components"], rows["test_mse"], "o-", label=method)
    ax_acc.plot(rows["n_components"], rows["test_accuracy"], "o-", label=method)
ax_mse.set_xlabel("n_components")
ax_mse.set_ylabel("test MSE (squared pixel values)")
ax_mse.set_yscale("log")
ax_acc.set_xlabel("n_components")
ax_acc.set_ylabel("accuracy of a logistic regression on the codes")
for ax in (ax_mse, ax_acc):
    ax.legend()
fig.suptitle("skae.compare on the digits: 25% held out")
fig.tight_layout()
# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_compare.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_compare.png", dpi=100)
plt.show()

# %%
# Other methods and other data
# ----------------------------
# ``estimators`` takes any scikit-learn transformers with ``n_components`` and
# ``inverse_transform``, by name: an autoencoder with another network, kernel
# PCA, or two settings of the same method. The ``progress`` callback receives
# ``(n_done, n_fits, label)`` before each fit, for a progress display of your
# own.
