"""
The PCA start: an autoencoder never worse than PCA
==================================================

By default (``init='pca'``) :class:`skae.AutoencoderTransformer` begins where
PCA ends: its network is a linear encoder and decoder set to PCA's projection,
plus non-linear networks that start at zero. Training adds what a linear map
cannot express, and the epoch kept is the best one on held-out rows, with the
PCA start itself competing. This example compares that start with the random
start of a plain network (``init='random'``) on the digits, at every code size.
"""

# %%
# Fit both starts at several code sizes
# -------------------------------------
# Pixels are scaled to [0, 1]; a quarter of the digits is kept for testing.
# Everything but ``n_components``, ``init`` and the seed is left at its default.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

X = load_digits().data / 16.0
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)


def test_mse(model):
    return np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)


ks = [4, 8, 16, 32, 48]
ratios = {"pca": [], "random": []}
models = {}
for k in ks:
    pca_error = test_mse(PCA(n_components=k).fit(X_train))
    for init in ratios:
        model = AutoencoderTransformer(n_components=k, init=init, random_state=0)
        models[init, k] = model.fit(X_train)
        ratios[init].append(test_mse(model) / pca_error)
    print(
        f"k={k:2d}  test MSE / PCA's:  init='pca' {ratios['pca'][-1]:.2f}   "
        f"init='random' {ratios['random'][-1]:.2f}"
    )

# %%
# Plot the ratio to PCA, and the training of one model
# ----------------------------------------------------
# Left: below the dashed line the autoencoder reconstructs the test digits
# better than PCA with as many components. Right: the validation error epoch
# by epoch at k = 32; the PCA start begins at PCA's error (epoch 0), the
# random start far above it.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for init, marker in (("pca", "o"), ("random", "s")):
    left.plot(ks, ratios[init], marker=marker, label=f"init='{init}'")
left.axhline(1.0, color="gray", linestyle="--", label="PCA")
left.set_xscale("log", base=2)
left.set_yscale("log")
left.set_xticks(ks, [str(k) for k in ks])
left.minorticks_off()
left.set_xlabel("number of components k")
left.set_ylabel("test MSE / PCA's test MSE (log scale)")
left.set_title("Digits: autoencoder against PCA")
left.legend()

pca_32 = PCA(n_components=32).fit(X_train)
for init in ("pca", "random"):
    model = models[init, 32]
    curve = -np.asarray(model.validation_scores_)
    right.plot(np.arange(1, len(curve) + 1), curve, label=f"init='{init}'")
right.axhline(test_mse(pca_32), color="gray", linestyle="--", label="PCA (test)")
right.set_yscale("log")
right.set_xlabel("epoch")
right.set_ylabel("validation MSE (log scale)")
right.set_title("k = 32: validation error while training")
right.legend()
plt.show()

# %%
# With the PCA start the autoencoder is at or below PCA at every k, including
# the large codes where a randomly started network cannot catch up with PCA's
# exact solution in its training budget. The start also makes small data fast:
# training stops once the held-out error stops improving, after a few dozen
# epochs.
