"""The family shares one base class; its variants' parameters and docs stay in step."""

import ast
import inspect
import re

import numpy as np
import pytest

from skae import AutoencoderTransformer, VariationalAutoencoder
from skae._parameters import (
    ARCHITECTURE_PARAMS,
    AUTO_BATCH_SIZE,
    AUTO_MAX_EPOCHS,
    AUTO_MIN_EPOCHS,
    AUTO_STEPS,
    SHARED_CONSTRAINTS,
)
from skae._standardization import SCALE_ROWS

VARIANTS = [AutoencoderTransformer, VariationalAutoencoder]
# Shared parameters whose documentation differs on purpose, and why.
DOCUMENTED_DIFFERENTLY = {
    "n_components": "a fraction of variance is the transformer's alone",
    "activation": "the defaults differ (GELU; ReLU for the variational network)",
    "early_stopping": "the defaults differ ('auto'; False, as KL terms are noisy)",
    "loss": "binary cross-entropy makes the variational objective an ELBO",
    "network": "the variational encoder outputs means and log-variances",
}


def documented_parameters(cls):
    """{name: entry text} of the numpydoc Parameters section, in order."""
    doc = inspect.getdoc(cls)
    section = doc.split("Parameters\n----------\n", 1)[1]
    section = re.split(r"\n\S[^\n]*\n-{3,}\n", section, maxsplit=1)[0]
    entries, name = {}, None
    for line in section.splitlines():
        match = re.match(r"(\w+) : ", line)
        if match:
            name = match.group(1)
            entries[name] = line
        elif name:
            entries[name] += "\n" + line
    return {name: text.strip() for name, text in entries.items()}


@pytest.mark.parametrize("cls", VARIANTS)
def test_every_parameter_is_documented_in_signature_order(cls):
    signature = list(inspect.signature(cls.__init__).parameters)[1:]
    assert list(documented_parameters(cls)) == signature


@pytest.mark.parametrize("cls", VARIANTS)
def test_documented_defaults_are_the_signature_defaults(cls):
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self"
    }
    for name, text in documented_parameters(cls).items():
        first_line = text.splitlines()[0].rstrip("\\").strip()
        documented = re.search(r"default=(.+)$", first_line).group(1)
        assert ast.literal_eval(documented) == defaults[name], (cls.__name__, name)


@pytest.mark.parametrize("cls", VARIANTS)
def test_every_parameter_is_validated_and_shared_ones_alike(cls):
    constraints = cls._parameter_constraints
    assert set(constraints) == set(cls._get_param_names())
    for name in set(SHARED_CONSTRAINTS) & set(constraints):
        if name != "n_components":
            assert constraints[name] is SHARED_CONSTRAINTS[name], name


def test_shared_parameters_are_documented_alike():
    first, second = (documented_parameters(cls) for cls in VARIANTS)
    shared = set(first) & set(second)
    assert set(DOCUMENTED_DIFFERENTLY) <= shared
    for name in sorted(shared - set(DOCUMENTED_DIFFERENTLY)):
        assert first[name] == second[name], name


@pytest.mark.parametrize("cls", VARIANTS)
def test_the_architecture_alone_builds_the_network(cls):
    """A network built from a recorded architecture ignores the current params."""
    architecture = {
        name: value
        for name, value in cls(n_components=3, hidden_layer_sizes=(5,))
        .get_params()
        .items()
        if name in ARCHITECTURE_PARAMS
    }
    other = cls(n_components=2, hidden_layer_sizes=(7, 4), dropout=0.5)
    network = other._build_network(architecture, n_features=6, n_components=3)
    widths = [
        module.out_features
        for module in network.decoder.modules()
        if hasattr(module, "out_features")
    ]
    assert 5 in widths and 7 not in widths and 4 not in widths
    assert not any("Dropout" in type(m).__name__ for m in network.modules())


@pytest.mark.parametrize("cls", VARIANTS)
def test_docstrings_quote_the_constants_the_code_uses(cls):
    """Numbers a docstring explains come from the named constants, not memory."""
    doc = " ".join(inspect.getdoc(cls).split())
    assert f"min({AUTO_BATCH_SIZE}, n_samples)" in doc
    assert f"about {AUTO_STEPS} optimiser steps" in doc
    assert f"within {AUTO_MIN_EPOCHS} to {AUTO_MAX_EPOCHS} epochs" in doc
    if cls is AutoencoderTransformer:
        assert f"at most about {SCALE_ROWS} evenly spaced rows" in doc


@pytest.mark.parametrize("cls", VARIANTS)
def test_every_fitted_attribute_is_documented(cls):
    X = np.random.RandomState(0).normal(size=(40, 5))
    model = cls(n_components=2, hidden_layer_sizes=(4,), max_iter=2).fit(X)
    doc = inspect.getdoc(cls)
    section = doc.split("Attributes\n----------\n", 1)[1]
    documented = set(re.findall(r"^(\w+_) : ", section, flags=re.MULTILINE))
    fitted = {
        name for name in vars(model) if name.endswith("_") and not name.startswith("_")
    }
    assert fitted <= documented, sorted(fitted - documented)
