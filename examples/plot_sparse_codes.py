"""
Sparse codes: fewer active code entries per sample
==================================================

With ``sparsity > 0``, :class:`skae.AutoencoderTransformer` adds a penalty on
the codes to its training loss, so that each sample is described by a few
large code entries while the others stay near zero. Such codes are easier to
read: each code dimension tends to stand for a feature that is present or
absent.

The penalty is the mean absolute value of each code dimension divided by its
root mean square. A plain L1 penalty would be too easy to dodge: the network
would shrink all codes and scale the decoder's weights up to match, with no
entry any closer to zero than the others. This ratio does not change with the
codes' scale, so only genuinely sparse codes lower it. Accordingly, we count a
code entry as *near zero* when it is below a tenth of the root mean square of
its dimension.
"""

# %%
# Fit with growing penalties
# --------------------------
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
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.3, random_state=0
)


def near_zero_fraction(Z):
    """Share of code entries below a tenth of their dimension's RMS."""
    return np.mean(np.abs(Z) < 0.1 * np.sqrt(np.mean(Z**2, axis=0)))


penalties = [0.0, 0.1, 0.3, 1.0]
codes, errors = {}, {}
for sparsity in penalties:
    ae = AutoencoderTransformer(16, sparsity=sparsity, max_iter=60, random_state=0)
    # Sixty epochs show the trade-off; a fit still improving then warns that
    # more epochs might help, which this comparison does not need.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(X_train)
    codes[sparsity] = ae.transform(X_test)
    errors[sparsity] = -ae.score(X_test)
pca = PCA(16).fit(X_train)
pca_error = np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)

for sparsity in penalties:
    print(
        f"sparsity={sparsity:<4}: {near_zero_fraction(codes[sparsity]):4.0%} of code "
        f"entries near zero, test MSE {errors[sparsity]:.4f}"
    )
print(f"PCA with 16 components: test MSE {pca_error:.4f}")

# %%
# Up to ``sparsity=0.3``, the error stays within a third of the unpenalised
# one, about PCA's at the same size, while the share of near-zero entries
# grows about sixfold. A stronger penalty buys more sparsity with more error.
#
# Codes of the same digits
# ------------------------
# Codes of 30 test digits, three of each class, sorted by class, each code
# dimension scaled by its root mean square. Without a penalty every entry is
# in use; with one, each digit lights up a few.
order = np.argsort(y_test, kind="stable")
shown = np.concatenate([order[y_test[order] == digit][:3] for digit in range(10)])
fig, axes = plt.subplots(
    1,
    len(penalties) + 1,
    figsize=(13, 4.2),
    layout="constrained",
    width_ratios=[*([1] * len(penalties)), 1.3],
)
for ax, sparsity in zip(axes, penalties, strict=False):
    Z = codes[sparsity]
    scaled = np.abs(Z / np.sqrt(np.mean(Z**2, axis=0)))
    image = ax.imshow(scaled[shown], cmap="magma_r", vmin=0, vmax=2.5, aspect="auto")
    ax.set_title(
        f"sparsity={sparsity}\n{near_zero_fraction(Z):.0%} near zero, "
        f"MSE {errors[sparsity]:.4f}",
        fontsize=9,
    )
    ax.set_xlabel("code dimension")
    ax.set_yticks(np.arange(0, 30, 3), [str(digit) for digit in range(10)])
axes[0].set_ylabel("test digits (3 per class)")
fig.colorbar(image, ax=axes[len(penalties) - 1], label="|code| / RMS of dimension")

ax = axes[-1]
ax.plot(penalties, [near_zero_fraction(codes[s]) for s in penalties], "o-")
ax.set_xscale("symlog", linthresh=0.1)
ax.set_xlabel("sparsity")
ax.set_ylabel("share of near-zero code entries", color="C0")
twin = ax.twinx()
twin.plot(penalties, [errors[s] for s in penalties], "s--", color="C1")
twin.axhline(pca_error, color="C1", linestyle=":", label="PCA, 16 components")
twin.set_ylabel("test MSE", color="C1")
twin.legend(loc="upper left", fontsize=8)
fig.suptitle("Sparse autoencoder codes of 8x8 digits (k=16)")

# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_sparse_codes.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_sparse_codes.png", dpi=100)
plt.show()
