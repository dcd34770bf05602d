"""
Your own torch modules inside the estimator
===========================================

The built-in networks are stacks of dense layers (or convolutions, with
``image_shape``). When you want something else, a residual block, a
normalisation layer, a bounded code, pass a *factory* as ``network``: skae
calls ``network(n_features, n_outputs)`` when it builds the model and expects
``(encoder, decoder)``, two :class:`torch.nn.Module` objects. The encoder maps
``(batch, n_features)`` to ``(batch, n_outputs)``; the decoder maps codes of
``n_components`` columns back to ``(batch, n_features)``. ``n_outputs`` is
``n_components``, or twice that for a
:class:`~skae.VariationalAutoencoder`, whose encoder returns means and
log-variances side by side.

Everything else stays the estimator's: standardisation, the training loop,
early stopping, ``score``, ``warm_start``, ``partial_fit``, pickling and
:class:`~sklearn.model_selection.GridSearchCV`. skae checks the widths of the
modules with a dummy batch before training, so a mismatch is a clear error,
not a shape error deep inside torch.
"""

# %%
# A residual network factory
# --------------------------
# Keep the factory a module-level function (or a class with ``__call__``), so
# that the estimator pickles and clones like any other.
import pickle
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from torch import nn

from skae import AutoencoderTransformer

# The folder of this script; the gallery runs it there, without __file__.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()


class Residual(nn.Module):
    """``x + f(x)``: the block learns a correction to its input."""

    def __init__(self, width):
        super().__init__()
        self.block = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), nn.GELU()
        )

    def forward(self, x):
        return x + self.block(x)


def residual_network(n_features, n_outputs, width=128, n_blocks=2):
    """Encoder and decoder of ``n_blocks`` residual blocks of ``width`` units."""
    encoder = nn.Sequential(
        nn.Linear(n_features, width),
        *(Residual(width) for _ in range(n_blocks)),
        nn.Linear(width, n_outputs),
    )
    decoder = nn.Sequential(
        nn.Linear(n_outputs, width),
        *(Residual(width) for _ in range(n_blocks)),
        nn.Linear(width, n_features),
    )
    return encoder, decoder


# %%
# Train it like the built-in network
# ----------------------------------
# Both models hold out 10% of the training digits and stop when the error on
# them has not improved for 10 epochs, keeping the best weights.
X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)

options = {
    "n_components": 8,
    "early_stopping": True,
    "max_iter": 150,
    "random_state": 0,
}
models = {
    "built-in dense (256, 128)": AutoencoderTransformer(**options),
    "residual factory": AutoencoderTransformer(network=residual_network, **options),
}
for label, model in models.items():
    model.fit(X_train)
    print(f"{label:>25}: {model.n_iter_} epochs, test MSE {-model.score(X_test):.3f}")
print(models["residual factory"].encoder_)

# %%
# The fitted model pickles with its modules, as long as the factory can be
# imported where it is unpickled.
restored = pickle.loads(pickle.dumps(models["residual factory"]))
assert np.array_equal(
    restored.transform(X_test), models["residual factory"].transform(X_test)
)

# %%
# Tune the factory's own arguments
# --------------------------------
# Parameters of the factory are not estimator parameters, but a small callable
# class turns them into values ``GridSearchCV`` can set through ``network``.


class ResidualNetwork:
    """A picklable factory with its own settings."""

    def __init__(self, n_blocks):
        self.n_blocks = n_blocks

    def __call__(self, n_features, n_outputs):
        return residual_network(n_features, n_outputs, n_blocks=self.n_blocks)

    def __repr__(self):
        return f"ResidualNetwork(n_blocks={self.n_blocks})"


# Thirty epochs keep the search short: enough to rank the two networks, not to
# converge, so the ConvergenceWarning of every fit is expected and silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search = GridSearchCV(
        AutoencoderTransformer(n_components=8, max_iter=30, random_state=0),
        {"network": [ResidualNetwork(1), ResidualNetwork(3)]},
        cv=3,
    ).fit(X_train)
for params, score in zip(
    search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
):
    print(f"{params['network']}: cross-validated MSE {-score:.3f}")

# %%
# Training curves
# ---------------
# ``loss_curve_`` and ``validation_scores_`` are recorded for any network.
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for color, (label, model) in zip(("C0", "C1"), models.items(), strict=True):
    ax.plot(model.loss_curve_, color=color, linestyle="--", label=f"{label}: training")
    ax.plot(
        -np.asarray(model.validation_scores_), color=color, label=f"{label}: validation"
    )
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("mean squared error (pixel units)")
ax.legend()
ax.set_title("Digits, k=8: a custom residual network vs the built-in one")

# Run as a script (not in the documentation's gallery), it also saves the figure
# beside itself, as plot_custom_modules.png, whatever the working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig(HERE / "plot_custom_modules.png", dpi=100)
plt.show()
