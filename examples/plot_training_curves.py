"""
Training curves and early stopping
==================================

Every fit records its progress: with ``early_stopping=True``,
``validation_scores_`` holds the score on a held-out part of the training data
after each judged epoch, and ``loss_curve_`` the training loss of each epoch of
the model kept: the judged epochs up to the best, then a few epochs over every
row, held-out ones included. Both are in the input's units (squared pixel
values here), so they can be drawn on one axis and compared with the error on
a test set.
"""

# %%
# Fit with early stopping
# -----------------------
# ``validation_fraction=0.1`` of the training digits is held out. Training stops
# once the validation score has not improved by at least ``tol`` for more than
# ``n_iter_no_change`` epochs; the best validation epoch sets how long the model
# kept trains on all the rows. A patience of 20 epochs, twice the default, lets
# the curves run on a little past the best epoch.
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

ae = AutoencoderTransformer(
    n_components=8,
    early_stopping=True,
    validation_fraction=0.1,
    n_iter_no_change=20,
    random_state=0,
).fit(X_train)

best_epoch = int(np.argmax(ae.validation_scores_)) + 1
test_mse = -ae.score(X_test)
print(f"epochs trained:            {ae.n_iter_}")
print(f"best validation epoch:     {best_epoch}")
print(f"best validation MSE:       {-ae.best_validation_score_:.3f}")
print(f"test MSE of the fit model: {test_mse:.3f}")

# %%
# Plot the curves
# ---------------
# ``validation_scores_`` are scores (higher is better), so their negatives are
# mean squared errors, in the same units as ``loss_curve_``. The training loss
# is averaged over the epoch's mini-batches while the weights change; the
# validation error is measured once, at the end of the epoch.
fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
ax.plot(
    np.arange(1, ae.n_iter_ + 1), ae.loss_curve_, label="training loss (loss_curve_)"
)
ax.plot(
    np.arange(1, len(ae.validation_scores_) + 1),
    -np.asarray(ae.validation_scores_),
    label="validation error (-validation_scores_)",
)
ax.axvline(best_epoch, color="gray", linestyle="--", label="best validation epoch")
ax.plot(
    best_epoch,
    test_mse,
    "k*",
    markersize=12,
    label="test error of the fitted model",
)
ax.set_yscale("log")
ax.set_yticks([1, 2, 3, 5, 10, 20], ["1", "2", "3", "5", "10", "20"])
ax.minorticks_off()
ax.set_xlabel("epoch")
ax.set_ylabel("mean squared error (log scale)")
ax.set_title("Autoencoder on the digits, n_components=8")
ax.legend()
# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_training_curves.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_training_curves.png", dpi=100)
plt.show()

# %%
# The gap between the two curves is the autoencoder learning its training
# digits better than digits it has not seen. The validation error flattens
# first; early stopping ends training there, and the best epoch's network goes
# on over every row for a few epochs. The fitted model's error on the test set
# lies close to the best validation error: the held-out tenth is a fair judge of
# digits the model has never seen.
