# SPDX-License-Identifier: BSD-3-Clause
"""Safe persistence: :func:`save` and :func:`load` without pickle.

A model file is one safetensors file. Its tensors are the network's weights and
every array of the fitted state; its metadata holds one JSON document with the
estimator's class name, its parameters, the rest of its fitted state and the
versions of skae, torch and scikit-learn that wrote it. Reading it parses JSON
and raw tensor bytes only, so a file from an untrusted source cannot run code,
and only skae's own estimator classes can come out of it.

This module sits above the scikit-learn face and knows estimators through one
pair of methods: ``_get_fitted_state`` says what is saved (attributes that are
data, the network's weights) and ``_restore_fitted_state`` rebuilds the
network from the saved architecture and weights, so a file stores data, never
code. Estimators inside estimators (the outlier detector's autoencoder) are
stored the same way, as nested documents. Only the classes of
:data:`LOADABLE_CLASSES` can come out of a file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import sklearn
import torch
from sklearn.base import BaseEstimator

from skae._autoencoder import AutoencoderTransformer
from skae._encoding import Decoder, Encoder, shorten
from skae._file_format import (
    CHECKSUM_KEY,
    DOCUMENT_KEY,
    FIRST_PUBLIC_NAMES_FORMAT,
    FORMAT_KEY,
    FORMAT_VERSION,
    check_loadable,
    checksum,
    read_document,
    read_safetensors,
)
from skae._fitted_state import (
    check_fitted_state,
    complete_state,
    is_fitted_state,
    renamed,
    set_state,
)
from skae._model_file import open_regular_file, short_repr
from skae._outlier import AutoencoderOutlierDetector
from skae._variational import VariationalAutoencoder
from skae._version import __version__
from skae._writing import replace_file

# The only classes a model file may name: skae's public estimators.
LOADABLE_CLASSES: dict[str, type[BaseEstimator]] = {
    cls.__name__: cls
    for cls in (
        AutoencoderOutlierDetector,
        AutoencoderTransformer,
        VariationalAutoencoder,
    )
}

_NOT_IN_VERSIONS = re.compile(r"[^0-9A-Za-z.+!_-]")


def save(estimator: BaseEstimator, path: str | os.PathLike[str]) -> None:
    """Save a skae estimator to a file that :func:`load` reads without pickle.

    The file is a `safetensors <https://huggingface.co/docs/safetensors>`_
    file: the weights of the network as tensors, and the parameters and fitted
    state as JSON in its metadata, with the versions of skae, torch and
    scikit-learn that wrote it. Unlike a pickle, it holds no code, so loading a
    file from a source you do not trust cannot run anything. Fitted and
    unfitted estimators can be saved; the file is written whole or not at all.

    Parameters
    ----------
    estimator : estimator object
        A skae estimator (:class:`AutoencoderTransformer`,
        :class:`VariationalAutoencoder`, :class:`AutoencoderOutlierDetector`),
        fitted or not. Every parameter must be data (numbers, strings,
        sequences, arrays, ``torch.device``, a NumPy ``RandomState``, a skae
        estimator); a callable such as a custom ``network`` factory is code,
        which this format refuses to store.

    path : str or os.PathLike
        Where to write. An existing file is replaced and keeps its permission
        bits; a symbolic link is followed, so the file it points to is
        replaced and the link kept.

    Raises
    ------
    TypeError
        If ``estimator`` is not one of skae's own estimator classes, or holds
        a parameter or attribute that is not data (for instance a callable).
    ValueError
        If the file would be larger than :func:`load` reads (a network of
        thousands of layers), or ``path`` is a loop of symbolic links.

    See Also
    --------
    load : Read a file written by ``save``.

    Notes
    -----
    ``pickle`` and ``joblib`` work as well, and keep anything, custom
    networks included; load such files only from sources you trust.

    The file is written to a temporary file beside it, named
    ``.skae-tmp.<name>.<token>``, then renamed over it, so a crash or
    ``kill -9`` during ``save`` leaves the old file whole. The temporary file
    of such an interrupted save stays behind; the next ``save`` to the same
    path removes it (on POSIX systems, where a lock tells a save in progress
    from an interrupted one).

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer, load, save
    >>> X = load_digits().data[:300]
    >>> ae = AutoencoderTransformer(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.safetensors")
    ...     save(ae, path)
    ...     restored = load(path)
    >>> bool((restored.transform(X) == ae.transform(X)).all())
    True
    """
    encoder = Encoder(_describe)
    document = _describe(encoder, estimator, where="")
    document["versions"] = _versions()
    metadata = {
        FORMAT_KEY: str(FORMAT_VERSION),
        DOCUMENT_KEY: json.dumps(document, separators=(",", ":")),
    }
    metadata[CHECKSUM_KEY] = checksum(metadata, encoder.tensors)
    content = safetensors.torch.save(encoder.tensors, metadata=metadata)
    check_loadable(content, metadata[DOCUMENT_KEY], type(estimator).__name__)
    # Written here, not by safetensors, whose files are private to their owner.
    replace_file(Path(path), lambda file: file.write(content), follow_links=True)


def load(path: str | os.PathLike[str]) -> BaseEstimator:
    """Load an estimator written by :func:`save`, without running code.

    The file's JSON is parsed and its tensors are read as raw bytes; the
    estimator class must be one of skae's own, its parameters pass the
    estimator's validation, and its network is rebuilt from them before the
    saved weights go in. A pickle or any other file is refused, so files from
    sources you do not trust are safe to load. Weights are loaded on the CPU,
    whatever device the model trained on.

    Loading is bounded by the file: every size the file claims (of a tensor,
    a string array, a layer) is checked against the bytes it holds before
    anything is allocated, so a file of N bytes needs about N bytes of memory
    plus a few MB. Every fitted attribute is checked against the network and
    the parameters, or derived from them.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.

    Returns
    -------
    estimator : estimator object
        The estimator as it was saved: same class, same parameters and, if it
        was fitted, the same fitted attributes and outputs, bit for bit.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If ``path`` is not a regular file (a folder, a named pipe, a loop of
        symbolic links), or the file
        is not a skae model file (a pickle, for instance), is truncated or
        corrupted, was written by a newer file format, claims sizes it does
        not hold, or describes an estimator that is not valid or a fitted
        state that does not agree with its network.

    Warns
    -----
    UserWarning
        If the file was written with another version of skae, torch or
        scikit-learn than the ones installed: the model may behave differently.

    See Also
    --------
    save : Write an estimator to a file.

    Examples
    --------
    >>> import os, tempfile
    >>> from skae import AutoencoderTransformer, load, save
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.safetensors")
    ...     save(AutoencoderTransformer(n_components=3), path)
    ...     load(path)
    AutoencoderTransformer(n_components=3)
    """
    path = Path(path)
    try:
        with open_regular_file(path) as file:
            size = os.fstat(file.fileno()).st_size
            metadata, tensors = read_safetensors(file, size, path)
        file_format, document = read_document(metadata, tensors, path)
        _warn_on_version_mismatch(document.get("versions"), path)
        build = functools.partial(
            _rebuild, old_names=file_format < FIRST_PUBLIC_NAMES_FORMAT
        )
        return Decoder(tensors, path, size, build).estimator(document)
    except MemoryError:
        # A safety net: every size a file claims is checked before allocating.
        raise ValueError(
            f"{path} needs more memory than this machine can allocate; it is not "
            "a model file skae.save would write."
        ) from None


# -- the estimator's document -------------------------------------------------------


def _describe(encoder: Encoder, estimator: Any, where: str) -> dict[str, Any]:
    """Describe a skae estimator: class, parameters, fitted state, weights."""
    cls = type(estimator)
    classes = LOADABLE_CLASSES
    if classes.get(cls.__name__) is not cls:
        raise TypeError(
            f"skae.save stores skae's own estimators ({', '.join(classes)}), got "
            f"{where or 'a'} {cls.__module__}.{cls.__qualname__}. Use pickle or "
            "joblib for it, and load such files only from sources you trust."
        )
    of = f" of {where}" if where else ""
    params = estimator.get_params(deep=False)
    state = estimator._get_fitted_state()
    return {
        "class": cls.__name__,
        "params": {
            name: encoder.encode(value, f"parameter {name!r}{of}")
            for name, value in params.items()
        },
        "attributes": {
            name: encoder.encode(value, f"attribute {name!r}{of}")
            for name, value in state.attributes.items()
        },
        "modules": state.modules,
        "network": {
            name: encoder.add(tensor) for name, tensor in state.weights.items()
        },
    }


# -- versions ----------------------------------------------------------------------


def _warn_on_version_mismatch(saved: Any, path: Path) -> None:
    if not isinstance(saved, dict):
        return
    mismatches = [
        f"{library} {_printable_version(saved[library])} (installed: {installed})"
        for library, installed in _versions().items()
        if isinstance(saved.get(library), str)
        and _release(saved[library]) != _release(installed)
    ]
    if mismatches:
        warnings.warn(
            f"{path} was saved with {', '.join(mismatches)}. The model may behave "
            "differently under these versions; check its results, then save it "
            "again to record the versions it works with.",
            UserWarning,
            stacklevel=3,
        )


def _printable_version(version: str) -> str:
    """Keep the characters of version numbers only: a file cannot write escapes."""
    return _NOT_IN_VERSIONS.sub("?", version[:40]) + (
        "..." if len(version) > 40 else ""
    )


def _release(version: str) -> str:
    """Drop a local build tag: torch 2.13.0+cpu and 2.13.0+cu124 are one release."""
    return version.split("+", 1)[0]


def _rebuild(
    document: dict[str, Any], decoder: Decoder, *, old_names: bool
) -> BaseEstimator:
    """Build a skae estimator from its document, through the estimator itself.

    ``old_names``: the file is of a format that stored fields under their
    attributes' names, renamed here before anything is checked.
    """
    classes = LOADABLE_CLASSES
    name = document.get("class")
    if not isinstance(name, str) or name not in classes:
        raise decoder.error(
            f"unknown estimator class {short_repr(name)}; skae.load builds only "
            f"{', '.join(classes)}"
        )
    cls = classes[name]
    params, attributes = document.get("params"), document.get("attributes")
    modules, network = document.get("modules"), document.get("network")
    if not (
        isinstance(params, dict)
        and isinstance(attributes, dict)
        and isinstance(modules, list)
        and isinstance(network, dict)
    ):
        raise decoder.error("its parameters, attributes or network are missing")
    params = {key: decoder.decode(value) for key, value in params.items()}
    attributes = {key: decoder.decode(value) for key, value in attributes.items()}
    if old_names:
        try:
            attributes = renamed(attributes)
        except ValueError as exc:
            raise decoder.error(str(exc)) from None
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ValueError(
            f"{decoder.path} sets parameters {short_repr(sorted(unknown))} that "
            f"{name} of this skae version does not have; load it with the skae "
            "version that saved it."
        )
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise ValueError(
            f"{decoder.path} holds an invalid parameter: {shorten(str(exc))}"
        ) from None
    for attribute in attributes:
        _check_attribute_name(attribute, cls, params, decoder)
    fitted = is_fitted_state(cls, attributes)
    if fitted:
        complete_state(cls, attributes)
    derived: dict[str, Any] = {}
    if modules:
        try:
            weights = {key: decoder.tensor(value) for key, value in network.items()}
        except ValueError as exc:
            raise decoder.error(f"bad network entry ({exc})") from None
        if isinstance(attributes.get("architecture"), dict):
            _check_claimed_lengths(attributes["architecture"], weights, decoder)
        try:
            derived = estimator._restore_fitted_state(attributes, weights)
        except (ValueError, TypeError) as exc:
            raise decoder.error(shorten(str(exc))) from None
        rebuilt = estimator._get_fitted_state().modules
        if rebuilt != sorted(str(module) for module in modules):
            raise decoder.error(
                f"it lists modules {short_repr(modules)}, but this skae rebuilds "
                f"{rebuilt}"
            )
    elif network or (fitted and cls._state_modules):
        raise decoder.error("it has fitted attributes but no network")
    try:
        check_fitted_state(estimator, attributes, derived, fitted=fitted)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise decoder.error(shorten(str(exc))) from None
    set_state(estimator, attributes, derived)
    return estimator


def _check_attribute_name(
    name: Any, cls: type, params: dict[str, Any], decoder: Decoder
) -> None:
    """Allow only names that cannot shadow a parameter, method or class setting."""
    if (
        not isinstance(name, str)
        or not name.isidentifier()
        or name.startswith("__")
        or name in params
        or hasattr(cls, name)
    ):
        raise decoder.error(f"it sets a forbidden attribute {short_repr(name)}")


def _check_claimed_lengths(
    architecture: dict[str, Any], weights: dict[str, torch.Tensor], decoder: Decoder
) -> None:
    """Compare the number of layers an architecture claims with the weights.

    Each entry of a list of widths adds a layer, and a used layer at least one
    weight tensor. Building a network takes time per layer, so this bound
    comes first; widths cost nothing on the meta device and are compared with
    the weights' shapes after building.
    """
    for name, value in architecture.items():
        if isinstance(value, np.ndarray):
            entries = value.size
        elif isinstance(value, list | tuple):
            entries = len(value)  # nested entries are refused when it is built
        else:
            continue
        if entries > len(weights):
            raise decoder.error(
                f"its architecture claims {entries} entries in {name}, for "
                f"{len(weights)} weight tensors"
            )


# -- helpers ----------------------------------------------------------------------


def _versions() -> dict[str, str]:
    return {
        "skae": __version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
    }
