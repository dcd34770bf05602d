# SPDX-License-Identifier: BSD-3-Clause
"""Values as JSON and tensors, and back, for the document of a model file.

JSON has numbers, strings, lists and objects; a fitted state has tuples,
NumPy scalars and arrays, torch tensors and devices, random states and
estimators. :class:`Encoder` writes each as a one-key object tagged with its
kind (``{"__tuple__": [...]}``), arrays and tensors set aside as named tensors
of the safetensors file; :class:`Decoder` reads those tags and no others, so
nothing named in a file is imported or called, and it checks every size an
entry claims before allocating it.

Knows none of skae's estimator classes: estimators are described and built by
the callables the caller passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from skae._model_file import short_repr

# Names of the file's tensors that values refer to.
TENSOR_PREFIX = "tensor."
# Limits on what a file may ask of load, beyond the tensors it holds: how deep
# values nest (a fitted model needs about 10 levels), and the memory that
# decoding its JSON may allocate, on top of the file's size.
_MAX_DEPTH = 64
_DECODING_SLACK = 2**20
_SCALAR_DTYPE = re.compile(r"[<>=|]?[biuf][1248]")
_STRINGS_DTYPE = re.compile(r"[<>=|]?(O|U[1-9][0-9]{0,9})")
_MT19937_KEYS = 624


class Encoder:
    """JSON for the document; arrays and tensors set aside as named tensors.

    JSON has no tuples, arrays or non-string keys, so those become one-key
    objects tagged ``"__tuple__"`` and so on; :class:`Decoder` reverses them.
    An estimator inside a value becomes the document ``describe`` makes of it.
    """

    def __init__(self, describe: Callable[[Encoder, Any, str], Any]) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.describe = describe

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
            return {"__tensor__": self.add(value)}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, BaseEstimator):
            return {"__estimator__": self.describe(self, value, where)}
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
            return {"__ndarray__": self.add(torch.from_numpy(native))}
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

    def add(self, tensor: torch.Tensor) -> str:
        key = f"{TENSOR_PREFIX}{len(self.tensors)}"
        self.tensors[key] = _detached(tensor)
        return key


def _detached(tensor: torch.Tensor) -> torch.Tensor:
    """Copy to a contiguous CPU tensor sharing memory with nothing else saved."""
    return tensor.detach().to("cpu", copy=True).contiguous()


class InvalidModelFile(ValueError):
    """A model file whose content is inconsistent: corrupted or tampered with."""


class Decoder:
    """Turn the tagged JSON of :class:`Encoder` back into values.

    Only the tags below are understood; anything else means a corrupted or
    tampered file. No tag imports or calls anything named in the file. Every
    size an entry claims is checked before it is allocated: string arrays
    share one budget, as large as the file plus a little, and each tensor of
    the file may be used once.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        path: Path,
        file_size: int,
        build: Callable[[dict[str, Any], Decoder], Any],
    ) -> None:
        self.tensors = tensors
        self.build = build
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
                    problem = shorten(str(exc))
                    raise self.error(f"bad {tag} entry ({problem})") from None
        raise self.error(f"unexpected entry {short_repr(value)}")

    def estimator(self, document: Any) -> Any:
        """Build the estimator a document describes, with ``build``."""
        if type(document) is not dict:
            raise self.error(f"bad estimator entry {short_repr(document)}")
        return self.build(document, self)

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
        if not (isinstance(key, str) and key.startswith(TENSOR_PREFIX)):
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


def shorten(text: str, limit: int = 300) -> str:
    """First line, at most ``limit`` characters, of a message quoted in another."""
    lines = text.strip().splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."
