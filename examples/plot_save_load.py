"""
Save a fitted model and load it safely
======================================

:func:`skae.save` writes an estimator, fitted or not, to a
`safetensors <https://huggingface.co/docs/safetensors>`_ file: the network's
weights as tensors, the parameters and fitted attributes as JSON. Unlike a
pickle, the file holds no code, so :func:`skae.load` can read a file from a
stranger without running anything from it.
"""

# %%
# Save, load, and get the same model back
# ---------------------------------------
# The loaded model has the same class, parameters and fitted attributes, and
# gives the same outputs, bit for bit.
import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer, load, save

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
ae = AutoencoderTransformer(n_components=8, random_state=0).fit(X_train)

folder = tempfile.mkdtemp()
path = os.path.join(folder, "digits-ae.safetensors")
save(ae, path)
restored = load(path)
print(restored)
print(f"file size: {os.path.getsize(path) / 1e6:.2f} MB")
print("same codes:", np.array_equal(restored.transform(X_test), ae.transform(X_test)))
print(f"test MSE: {-ae.score(X_test):.3f} saved, {-restored.score(X_test):.3f} loaded")

# %%
# What load guarantees
# --------------------
# ``load`` parses the file's JSON and reads its tensors as raw bytes; it never
# unpickles. It accepts only skae's own estimator classes, validates the
# parameters as ``fit`` would, rebuilds the network from them and checks every
# saved tensor and fitted attribute against it. Every size the file claims is
# checked against the bytes it holds before anything is allocated, so a file
# of N bytes needs about N bytes of memory. Whatever is wrong comes back as a
# short ``ValueError``: a pickle, a truncated or tampered file.
import pickle

not_a_model = os.path.join(folder, "model.pkl")
with open(not_a_model, "wb") as file:
    pickle.dump(ae, file)

truncated = os.path.join(folder, "truncated.safetensors")
with open(path, "rb") as source, open(truncated, "wb") as file:
    file.write(source.read()[: os.path.getsize(path) // 2])

for candidate in (not_a_model, truncated):
    try:
        load(candidate)
    except ValueError as exc:
        # The messages name the file; the temporary folder's name is left out.
        print("ValueError:", str(exc).replace(folder + os.sep, ""))

# %%
# A model file also records the versions of skae, PyTorch and scikit-learn
# that wrote it; ``load`` warns when they differ from the installed ones.
#
# What save refuses
# -----------------
# Code is not data: a custom ``network`` given as a Python callable cannot be
# stored in this format, and ``save`` says so with a ``TypeError`` instead of
# writing a file that could not be loaded. Use ``pickle`` or ``joblib`` for
# such models, which keep anything, and load those files only from sources
# you trust.
from torch import nn


def tiny_network(n_features, n_components):
    """Encoder and decoder as one linear layer each."""
    return nn.Linear(n_features, n_components), nn.Linear(n_components, n_features)


custom = AutoencoderTransformer(n_components=8, network=tiny_network)
try:
    save(custom, os.path.join(folder, "custom.safetensors"))
except TypeError as exc:
    print(f"TypeError: {exc}")
