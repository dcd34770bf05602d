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

import hashlib
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import safetensors.torch
import sklearn
import torch
from sklearn.base import BaseEstimator

from skae._autoencoder import AutoencoderTransformer
from skae._base import BaseAutoencoder
from skae._fitted_state import check_fitted_state
from skae._model_file import (
    HEADER_START,
    MAX_HEADER_BYTES,
    ModelFileError,
    check_json_containers,
    open_regular_file,
    parse_json,
    read_header,
    read_tensors,
    short_repr,
)
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

# Format 2 puts the JSON document under the checksum too; format 1 files,
# whose checksum covers the tensors only, still load.
FORMAT_VERSION = 2
_FORMATS_READ = (1, 2)
# Metadata keys of the safetensors file: a plain format number, the JSON,
# then the checksum of both and of every tensor.
_FORMAT_KEY = "skae.format"
_DOCUMENT_KEY = "skae.model"
_CHECKSUM_KEY = "skae.sha256"
_TENSOR_PREFIX = "tensor."
# Architecture parameters added since the first model files, with the value
# that gives the networks those files hold.
_ARCHITECTURE_ADDED = {
    "init": "random",
    "loss": "squared_error",
    "code_activation": "identity",
}
# Fitted attributes added since the first model files, with the value that
# says a fit measured nothing.
_FITTED_ATTRIBUTES_ADDED = {"reconstruction_r2_": None, "component_importances_": None}
# Limits on what a file may ask of load, beyond the tensors it holds: how deep
# values nest (a fitted model needs about 10 levels), and the memory that
# decoding its JSON may allocate, on top of the file's size.
_MAX_DEPTH = 64
_DECODING_SLACK = 2**20
_SCALAR_DTYPE = re.compile(r"[<>=|]?[biuf][1248]")
_STRINGS_DTYPE = re.compile(r"[<>=|]?(O|U[1-9][0-9]{0,9})")
_MT19937_KEYS = 624
_NOT_IN_VERSIONS = re.compile(r"[^0-9A-Za-z.+!_-]")
# How other files that are easy to mistake for a model file begin.
_FOREIGN_SIGNATURES = {
    b"\x80": "a pickle (from pickle, joblib or torch.save)",
    b"PK\x03\x04": "a zip archive (torch.save writes these)",
    b"\x93NUMPY": "a NumPy .npy file",
}


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
    encoder = _Encoder()
    document = encoder.document(estimator, where="")
    document["versions"] = _versions()
    metadata = {
        _FORMAT_KEY: str(FORMAT_VERSION),
        _DOCUMENT_KEY: json.dumps(document, separators=(",", ":")),
    }
    metadata[_CHECKSUM_KEY] = _checksum(metadata, encoder.tensors)
    content = safetensors.torch.save(encoder.tensors, metadata=metadata)
    _check_loadable(content, metadata[_DOCUMENT_KEY], estimator)
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
            metadata, tensors = _read_safetensors(file, size, path)
        document = _read_document(metadata, tensors, path)
        _warn_on_version_mismatch(document.get("versions"), path)
        return _Decoder(tensors, path, size).estimator(document)
    except MemoryError:
        # A safety net: every size a file claims is checked before allocating.
        raise ValueError(
            f"{path} needs more memory than this machine can allocate; it is not "
            "a model file skae.save would write."
        ) from None


# -- writing ----------------------------------------------------------------------


class _Encoder:
    """JSON for the document; arrays and tensors set aside as named tensors.

    JSON has no tuples, arrays or non-string keys, so those become one-key
    objects tagged ``"__tuple__"`` and so on; :class:`_Decoder` reverses them.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def document(self, estimator: Any, where: str) -> dict[str, Any]:
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
                name: self.encode(value, f"parameter {name!r}{of}")
                for name, value in params.items()
            },
            "attributes": {
                name: self.encode(value, f"attribute {name!r}{of}")
                for name, value in state.attributes.items()
            },
            "modules": state.modules,
            "network": {
                name: self._add(tensor) for name, tensor in state.weights.items()
            },
        }

    def encode(self, value: Any, where: str) -> Any:
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return {"__scalar__": [value.dtype.str, value.item()]}
        if isinstance(value, list):
            return [self.encode(item, where) for item in value]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(item, where) for item in value]}
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [self.encode(key, where), self.encode(item, where)]
                    for key, item in value.items()
                ]
            }
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self._add(value)}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, BaseEstimator):
            return {"__estimator__": self.document(value, where)}
        if isinstance(value, np.random.RandomState):
            name, keys, position, has_gauss, cached = value.get_state(legacy=True)
            return {
                "__random_state__": [name, keys.tolist(), position, has_gauss, cached]
            }
        kind = "a callable, that is code" if callable(value) else "not data"
        raise TypeError(
            f"skae.save cannot store {where}: {short_repr(value)} is {kind}, and a "
            "model file holds data only, so that loading it cannot run code. Use "
            "pickle or joblib for this model, and load such files only from "
            "sources you trust."
        )

    def _encode_array(self, value: np.ndarray, where: str) -> Any:
        if value.dtype.kind in "biuf":
            native = np.array(value, dtype=value.dtype.newbyteorder("="), order="C")
            return {"__ndarray__": self._add(torch.from_numpy(native))}
        if value.dtype.kind in "OU" and all(isinstance(x, str) for x in value.flat):
            return {
                "__strings__": [
                    value.dtype.str,
                    list(value.shape),
                    [str(x) for x in value.flat],
                ]
            }
        raise TypeError(
            f"skae.save cannot store {where}: an array of dtype {value.dtype}; it "
            "stores arrays of numbers, booleans or strings."
        )

    def _add(self, tensor: torch.Tensor) -> str:
        key = f"{_TENSOR_PREFIX}{len(self.tensors)}"
        self.tensors[key] = _detached(tensor)
        return key


def _detached(tensor: torch.Tensor) -> torch.Tensor:
    """Copy to a contiguous CPU tensor sharing memory with nothing else saved."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def _check_loadable(content: bytes, document: str, estimator: BaseEstimator) -> None:
    """Refuse to write a file that load would refuse for its size alone."""
    length = int.from_bytes(content[:HEADER_START], "little")
    try:
        if length > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"its header takes {length} bytes, more than the {MAX_HEADER_BYTES} "
                "a model file may hold"
            )
        header = content[HEADER_START : HEADER_START + length].decode("utf-8")
        check_json_containers(header, "its header")
        check_json_containers(document, "its JSON document")
    except ModelFileError as exc:
        raise ValueError(
            f"{type(estimator).__name__} is too large for a skae model file: {exc}, "
            "so skae.load would refuse it. A network of fewer layers fits; pickle "
            "and joblib store any model (load those from trusted sources only)."
        ) from None


# -- reading ----------------------------------------------------------------------


class InvalidModelFile(ValueError):
    """A model file whose content is inconsistent: corrupted or tampered with."""


class _Decoder:
    """Turn the tagged JSON of :class:`_Encoder` back into values.

    Only the tags below are understood; anything else means a corrupted or
    tampered file. No tag imports or calls anything named in the file. Every
    size an entry claims is checked before it is allocated: string arrays
    share one budget, as large as the file plus a little, and each tensor of
    the file may be used once.
    """

    def __init__(
        self, tensors: dict[str, torch.Tensor], path: Path, file_size: int
    ) -> None:
        self.tensors = tensors
        self.path = path
        self.used: set[str] = set()
        self.depth = 0
        self.budget = file_size + _DECODING_SLACK

    def decode(self, value: Any) -> Any:
        if value is None or type(value) in (bool, int, float, str):
            return value
        self.depth += 1
        try:
            if self.depth > _MAX_DEPTH:
                raise self.error(f"its values are nested more than {_MAX_DEPTH} deep")
            return self._decode_container(value)
        finally:
            self.depth -= 1

    def _decode_container(self, value: Any) -> Any:
        if type(value) is list:
            return [self.decode(item) for item in value]
        if type(value) is dict and len(value) == 1:
            ((tag, content),) = value.items()
            decoder = {
                "__tuple__": self._tuple,
                "__dict__": self._dict,
                "__scalar__": self._scalar,
                "__ndarray__": lambda key: self.tensor(key).numpy(),
                "__tensor__": self.tensor,
                "__strings__": self._strings,
                "__device__": self._device,
                "__random_state__": self._random_state,
            }.get(tag)
            if tag == "__estimator__":
                return self.estimator(content)
            if decoder is not None:
                try:
                    return decoder(content)
                except InvalidModelFile:
                    raise
                except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
                    problem = _shorten(str(exc))
                    raise self.error(f"bad {tag} entry ({problem})") from None
        raise self.error(f"unexpected entry {short_repr(value)}")

    def estimator(self, document: Any) -> BaseEstimator:
        """Build the estimator a document describes, through the estimator itself."""
        if type(document) is not dict:
            raise self.error(f"bad estimator entry {short_repr(document)}")
        return _rebuild(document, self)

    def error(self, problem: str) -> InvalidModelFile:
        return InvalidModelFile(
            f"{self.path} is not a valid skae model file: {problem}. It may have "
            "been corrupted or tampered with; save the model again with skae.save."
        )

    def _tuple(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(self.decode(_expect(items, list)))

    def _dict(self, pairs: list[Any]) -> dict[Any, Any]:
        decoded = [self.decode(_expect(pair, list)) for pair in _expect(pairs, list)]
        return {key: item for key, item in decoded}

    def _scalar(self, content: list[Any]) -> np.generic:
        dtype_str, item = _expect(content, list)
        dtype = _dtype(dtype_str, _SCALAR_DTYPE)
        if type(item) not in (bool, int, float):
            raise TypeError(f"scalar {short_repr(item)} is not a number")
        scalar: np.generic = dtype.type(item)
        return scalar

    def tensor(self, key: Any) -> torch.Tensor:
        if not (isinstance(key, str) and key.startswith(_TENSOR_PREFIX)):
            raise ValueError(f"tensor name {short_repr(key)}")
        if key not in self.tensors:
            raise ValueError(f"tensor {short_repr(key)} is missing")
        # Two values sharing memory would change together.
        if key in self.used:
            raise ValueError(f"tensor {key!r} is used twice")
        self.used.add(key)
        return self.tensors[key]

    def _strings(self, content: list[Any]) -> np.ndarray:
        dtype_str, shape, values = _expect(content, list)
        dtype = _dtype(dtype_str, _STRINGS_DTYPE)
        if not all(isinstance(value, str) for value in _expect(values, list)):
            raise TypeError("strings that are not all strings")
        shape = _expect(shape, list)
        if not (
            len(shape) <= 32
            and all(type(size) is int and size >= 0 for size in shape)
            and math.prod(shape) == len(values)
        ):
            raise ValueError(f"shape {short_repr(shape)} for {len(values)} strings")
        # A declared width, unlike the strings, costs nothing in the file.
        n_bytes = dtype.itemsize * len(values)
        if n_bytes > self.budget:
            raise ValueError(
                f"{len(values)} strings of dtype {dtype.str} need {n_bytes} bytes, "
                "far more than the file holds"
            )
        self.budget -= n_bytes
        return np.array(values, dtype=dtype).reshape(shape)

    def _device(self, name: str) -> torch.device:
        return torch.device(_expect(name, str))

    def _random_state(self, content: list[Any]) -> np.random.RandomState:
        name, keys, position, has_gauss, cached = _expect(content, list)
        # numpy reads its key at ``position`` unchecked: check it here.
        if not (
            name == "MT19937"
            and len(_expect(keys, list)) == _MT19937_KEYS
            and all(type(key) is int and 0 <= key < 2**32 for key in keys)
            and type(position) is int
            and 0 <= position <= _MT19937_KEYS
            and has_gauss in (0, 1)
            and type(cached) in (int, float)
            and math.isfinite(cached)
        ):
            raise ValueError("not a Mersenne Twister state")
        random_state = np.random.RandomState()
        random_state.set_state(
            (name, np.array(keys, dtype=np.uint32), position, has_gauss, cached)
        )
        return random_state


def _dtype(text: Any, pattern: re.Pattern[str]) -> np.dtype:
    """Make a dtype from its string, if it is one of the kinds ``pattern`` allows."""
    if not (isinstance(text, str) and pattern.fullmatch(text)):
        raise ValueError(f"dtype {short_repr(text)} is not allowed here")
    return np.dtype(text)


def _expect(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _refuse_foreign_file(head: bytes, path: Path) -> None:
    """Refuse a file that does not start as skae's do, naming common formats.

    Nothing here parses the file: a pickle is recognised, never unpickled.
    """
    if head[HEADER_START:] == b"{":
        return
    if not head:
        raise ValueError(f"{path} is empty, not a skae model file.")
    for signature, kind in _FOREIGN_SIGNATURES.items():
        if head.startswith(signature):
            raise ValueError(
                f"{path} is {kind}, not a skae model file. skae.load reads only files "
                "written by skae.save, because loading a pickle can run code hidden "
                "in it. Load pickles with pickle or joblib, and only from sources "
                "you trust."
            )
    raise ValueError(
        f"{path} is not a readable skae model file: it does not start as a "
        "safetensors file written by skae.save does. It may be truncated, "
        "corrupted or of another kind."
    )


def _read_safetensors(
    file: BinaryIO, size: int, path: Path
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Read the metadata and tensors of a model file, every size checked first."""
    _refuse_foreign_file(file.read(HEADER_START + 1), path)
    try:
        length, header = read_header(file, size)
        metadata = header.pop("__metadata__", {})
        if not (
            isinstance(metadata, dict)
            and all(isinstance(value, str) for value in metadata.values())
        ):
            raise ModelFileError("its metadata are not strings")
        tensors = read_tensors(file, header, HEADER_START + length, size)
    except ModelFileError as exc:
        raise ValueError(
            f"{path} is not a readable skae model file: {exc}. It is truncated, "
            "corrupted or of another kind; save the model again with skae.save."
        ) from None
    return metadata, tensors


def _read_document(
    metadata: dict[str, str], tensors: dict[str, torch.Tensor], path: Path
) -> dict[str, Any]:
    """Check the format and the checksum, then parse the JSON document."""
    file_format = _file_format(metadata, path)
    # Format 2 checks the checksum before interpreting anything it covers.
    if file_format >= 2 and metadata.get(_CHECKSUM_KEY) != _checksum(metadata, tensors):
        raise _corrupted(path, "its content does")
    try:
        document = parse_json(metadata.get(_DOCUMENT_KEY, ""), "its JSON document")
    except ModelFileError as exc:
        raise ValueError(
            f"{path} is not a valid skae model file: {exc}. It may have been "
            "corrupted or tampered with; save the model again with skae.save."
        ) from None
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a valid skae model file: no JSON document.")
    if file_format == 1 and document.pop("sha256", None) != _digest(tensors):
        raise _corrupted(path, "its tensors do")
    return document


def _file_format(metadata: dict[str, str], path: Path) -> int:
    if _FORMAT_KEY not in metadata:
        raise ValueError(
            f"{path} is a safetensors file, but not one written by skae.save (it has "
            "no skae metadata)."
        )
    text = metadata[_FORMAT_KEY]
    file_format = int(text) if text.isdigit() and len(text) < 10 else -1
    if file_format > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in skae file format {file_format}, newer than the "
            f"format {FORMAT_VERSION} this skae reads; upgrade skae to load it."
        )
    if file_format not in _FORMATS_READ:
        raise ValueError(
            f"{path} has an invalid skae file format {short_repr(text)}; it may "
            "have been corrupted or tampered with."
        )
    return file_format


def _corrupted(path: Path, what: str) -> ValueError:
    return ValueError(
        f"{path} is corrupted: {what} not match the checksum saved with it. "
        "Save the model again with skae.save."
    )


def _checksum(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the format number, the JSON document and every tensor."""
    digest = hashlib.sha256()
    for key in (_FORMAT_KEY, _DOCUMENT_KEY):
        text = metadata.get(key, "").encode("utf-8", "surrogatepass")
        # Each length first: no shift of text from one part to the next matches.
        digest.update(len(text).to_bytes(8, "little") + text)
    _add_tensors(digest, tensors)
    return digest.hexdigest()


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of all tensors (format 1)."""
    digest = hashlib.sha256()
    _add_tensors(digest, tensors)
    return digest.hexdigest()


def _add_tensors(digest: Any, tensors: dict[str, torch.Tensor]) -> None:
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # The array itself, not a copy of its bytes: no second copy of the model.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())


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


def _rebuild(document: dict[str, Any], decoder: _Decoder) -> BaseEstimator:
    """Build a skae estimator from its document, through the estimator itself."""
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
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ValueError(
            f"{decoder.path} sets parameters {short_repr(sorted(unknown))} that "
            f"{name} of this skae version does not have; load it with the skae "
            "version that saved it."
        )
    if "init" in cls._get_param_names():
        # Files from before the PCA start hold randomly initialised networks.
        params.setdefault("init", "random")
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise ValueError(
            f"{decoder.path} holds an invalid parameter: {_shorten(str(exc))}"
        ) from None
    for attribute in attributes:
        _check_attribute_name(attribute, cls, params, decoder)
    fitted = any(attribute.endswith("_") for attribute in attributes)
    if fitted and issubclass(cls, BaseAutoencoder):
        for attribute, value in _FITTED_ATTRIBUTES_ADDED.items():
            attributes.setdefault(attribute, value)
    derived: dict[str, Any] = {}
    if modules:
        try:
            weights = {key: decoder.tensor(value) for key, value in network.items()}
        except ValueError as exc:
            raise decoder.error(f"bad network entry ({exc})") from None
        _complete_architecture(estimator, attributes, weights, decoder)
        try:
            derived = estimator._restore_fitted_state(attributes, weights)
        except (ValueError, TypeError) as exc:
            raise decoder.error(_shorten(str(exc))) from None
        rebuilt = estimator._get_fitted_state().modules
        if rebuilt != sorted(str(module) for module in modules):
            raise decoder.error(
                f"it lists modules {short_repr(modules)}, but this skae rebuilds "
                f"{rebuilt}"
            )
    elif network or (fitted and issubclass(cls, BaseAutoencoder)):
        raise decoder.error("it has fitted attributes but no network")
    try:
        check_fitted_state(estimator, attributes, derived, fitted=fitted)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise decoder.error(_shorten(str(exc))) from None
    for attribute, value in attributes.items():
        if attribute not in derived:
            setattr(estimator, attribute, value)
    return estimator


def _check_attribute_name(
    name: Any, cls: type, params: dict[str, Any], decoder: _Decoder
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


def _complete_architecture(
    estimator: BaseEstimator,
    attributes: dict[str, Any],
    weights: dict[str, torch.Tensor],
    decoder: _Decoder,
) -> None:
    """Fill in what older files' architectures lack; bound the layers they claim."""
    architecture = attributes.get("_architecture")
    if not isinstance(architecture, dict):
        return  # the estimator says what is wrong
    # Files from before these parameters hold networks without them.
    for name, value in _ARCHITECTURE_ADDED.items():
        if name in estimator.get_params(deep=False):
            architecture.setdefault(name, value)
    _check_claimed_lengths(architecture, weights, decoder)


def _check_claimed_lengths(
    architecture: dict[str, Any], weights: dict[str, torch.Tensor], decoder: _Decoder
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


def _shorten(text: str, limit: int = 300) -> str:
    """First line, at most ``limit`` characters, of a message quoted in another."""
    lines = text.strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
