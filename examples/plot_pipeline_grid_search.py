"""
Tuning n_components in a Pipeline with GridSearchCV
===================================================

:class:`skae.AutoencoderTransformer` is a scikit-learn transformer, so it goes
into a :class:`~sklearn.pipeline.Pipeline` in front of a classifier and its
parameters are tuned by :class:`~sklearn.model_selection.GridSearchCV` like any
other step's, here ``reduce__n_components``.

The search scores every candidate twice: by the classifier's accuracy, which
needs labels, and by the autoencoder's own :meth:`score
<skae.AutoencoderTransformer.score>` (negative mean squared reconstruction
error), which does not. :class:`~sklearn.decomposition.PCA` in the same
pipeline is the baseline.
"""

# %%
# The pipeline and the grid
# -------------------------
# Codes are standardised before the logistic regression, as they have no
# particular scale. A list of two grids puts the autoencoder and PCA in the
# same search; the autoencoder is kept small (one hidden layer of 128 units)
# so that the 12 fits of the search stay quick.
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, reconstruction_scorer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()

X, y = load_digits(return_X_y=True)

pipeline = Pipeline(
    [
        ("reduce", PCA()),
        ("scale", StandardScaler()),
        ("classify", LogisticRegression(max_iter=1000)),
    ]
)
autoencoder = AutoencoderTransformer(
    hidden_layer_sizes=(128,),
    learning_rate_init=3e-3,
    early_stopping=True,
    random_state=0,
)
n_components = [2, 4, 8, 16]
param_grid = [
    {"reduce": [autoencoder], "reduce__n_components": n_components},
    {"reduce": [PCA(random_state=0)], "reduce__n_components": n_components},
]


# %%
# Two scores per candidate
# ------------------------
# ``reconstruction`` scores the pipeline's reducer with
# :func:`skae.reconstruction_scorer`, so that PCA and the autoencoder are
# measured in the same units (PCA's own ``score`` is a log-likelihood). For the
# autoencoder it equals ``reduce.score(X)``. The pipeline ends in a classifier,
# which has no ``inverse_transform``, so the scorer gets the reducer alone.
def reconstruction(estimator, X, y=None):
    """Negative mean squared reconstruction error of the pipeline's reducer."""
    return reconstruction_scorer(estimator.named_steps["reduce"], X)


search = GridSearchCV(
    pipeline,
    param_grid,
    scoring={"accuracy": "accuracy", "reconstruction": reconstruction},
    refit="accuracy",
    cv=3,
)
# With max_iter='auto', reaching the last planned epoch means the cosine
# schedule has run its course, not that training failed: the warning of the
# candidates that get there is expected.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X, y)

# %%
# The table
# ---------
results = pd.DataFrame(
    {
        "reducer": [type(r).__name__ for r in search.cv_results_["param_reduce"]],
        "n_components": search.cv_results_["param_reduce__n_components"],
        "accuracy": search.cv_results_["mean_test_accuracy"],
        "reconstruction MSE": -search.cv_results_["mean_test_reconstruction"],
        "fit time (s)": search.cv_results_["mean_fit_time"],
    }
)
print(results.round(3).to_string(index=False))
best = search.best_params_
print(
    f"\nBest by accuracy: {type(best['reduce']).__name__} with "
    f"n_components={best['reduce__n_components']}"
)

# %%
# Both scores improve as codes get longer, so the reconstruction error alone
# always asks for the largest ``n_components`` in the grid: choose with a
# supervised score when labels exist, or take the smallest code whose error is
# acceptable when they do not. The autoencoder's lead over PCA is largest for
# short codes, where a linear projection has to drop the most.
fig, (ax_mse, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for reducer, rows in results.groupby("reducer", sort=False):
    label = "Autoencoder" if reducer == "AutoencoderTransformer" else reducer
    ax_mse.plot(rows["n_components"], rows["reconstruction MSE"], "o-", label=label)
    ax_acc.plot(rows["n_components"], rows["accuracy"], "o-", label=label)
for ax in (ax_mse, ax_acc):
    ax.set_xscale("log", base=2)
    ax.set_xticks(n_components, [str(k) for k in n_components])
    ax.set_xlabel("n_components")
    ax.grid(alpha=0.3)
ax_mse.set_ylabel("reconstruction MSE (pixel units²)")
ax_mse.set_title("Reconstruction error (unsupervised)")
ax_acc.set_ylabel("accuracy")
ax_acc.set_title("Logistic regression accuracy (supervised)")
ax_acc.legend()
fig.suptitle("3-fold cross-validation on the digits")
# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_pipeline_grid_search.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_pipeline_grid_search.png", dpi=100)
plt.show()
