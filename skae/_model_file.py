# SPDX-License-Identifier: BSD-3-Clause
"""Read a safetensors file from a stranger with bounded work and memory.

A safetensors file is an 8-byte little-endian header length, a JSON header
(each tensor's dtype, shape and byte range, and string metadata), then the
tensors' bytes. This module reads one from a single open file descriptor that
is checked to be a regular file (a named pipe would block forever), checks
every size the header claims against the file's actual size before anything
is allocated, and copies each tensor's bytes straight into its own tensor. So
reading a file of N bytes allocates about N bytes, plus a bounded multiple of
its JSON header.

Imports numpy and torch only.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

import torch

# The 8-byte header length, then the header, which must begin with "{".
HEADER_START = 8
# safetensors refuses larger headers too.
MAX_HEADER_BYTES = 100_000_000
# JSON objects and arrays one parse may create. Empty containers are the JSON
# that takes the most memory per byte once parsed (about 64 bytes for 3), so
# their number is what bounds the parse; a model file needs a few hundred.
MAX_JSON_CONTAINERS = 100_000
# safetensors dtype names -> torch dtypes (little-endian, as the format says).
DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "I32": torch.int32,
    "I64": torch.int64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
}
# Strings, then the brackets outside them: counted without parsing. Possessive
# loops keep no backtracking state, which would take memory per character.
_JSON_STRINGS_AND_OPENINGS = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[\[{]')
_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


class ModelFileError(ValueError):
    """The file is not a well-formed safetensors file; says what is wrong."""


def open_regular_file(
    path: Path, advice: str = "skae.load reads model files written by skae.save"
) -> BinaryIO:
    """Open ``path`` for reading, after following links, if it is a regular file.

    Opening does not block on a named pipe, and the descriptor itself is
    checked, so the file cannot be swapped for a pipe between check and read.
    Anything else, a loop of symbolic links included, is a ValueError that
    names what ``path`` is, then gives ``advice``.
    """
    try:
        _check_regular(os.stat(path).st_mode, path, advice)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        descriptor = os.open(path, flags)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ValueError(
            f"{path} is a loop of symbolic links, not a regular file; {advice}."
        ) from None
    try:
        _check_regular(os.fstat(descriptor).st_mode, path, advice)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def file_kind(mode: int) -> str:
    """Say what a file of this ``st_mode`` is: 'a regular file', 'a folder', ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a file")


def _check_regular(mode: int, path: Path, advice: str) -> None:
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is {file_kind(mode)}, not a regular file; {advice}.")


def read_header(file: BinaryIO, size: int) -> tuple[int, dict[str, Any]]:
    """Read and parse the JSON header; return its length and content."""
    file.seek(0)
    length = int.from_bytes(file.read(HEADER_START), "little")
    if length > min(size - HEADER_START, MAX_HEADER_BYTES):
        raise ModelFileError(
            f"it claims a {length}-byte header, but the file has {size} bytes"
        )
    raw = file.read(length)
    if len(raw) != length:
        raise ModelFileError("its header is incomplete")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError("its header is not UTF-8 text") from None
    header = parse_json(text, "its header")
    if not isinstance(header, dict):
        raise ModelFileError("its header is not a JSON object")
    return length, header


def parse_json(text: str, what: str) -> Any:
    """Parse JSON whose number of objects and arrays is bounded."""
    check_json_containers(text, what)
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise ModelFileError(f"{what} cannot be parsed ({exc})") from None


def check_json_containers(text: str, what: str) -> None:
    """Refuse JSON of more objects and arrays than a model file may hold.

    ``skae.save`` calls it too, so that it never writes a file load refuses.
    """
    # Counting every bracket, strings included, is a quick upper bound.
    if text.count("[") + text.count("{") <= MAX_JSON_CONTAINERS:
        return
    containers = sum(
        1
        for match in _JSON_STRINGS_AND_OPENINGS.finditer(text)
        if match.group() in "[{"
    )
    if containers > MAX_JSON_CONTAINERS:
        raise ModelFileError(
            f"{what} holds {containers} JSON objects and arrays, more than the "
            f"{MAX_JSON_CONTAINERS} a model file may hold"
        )


def read_tensors(
    file: BinaryIO, header: dict[str, Any], data_start: int, size: int
) -> dict[str, torch.Tensor]:
    """Check the header's tensor entries against the file, then read them."""
    layout = sorted(
        (_tensor_entry(name, entry) for name, entry in header.items()),
        key=lambda item: item[3],
    )
    position = 0
    for name, _, _, begin, end in layout:
        if begin != position:
            raise ModelFileError(
                f"tensor {short_repr(name)} starts at byte {count(begin)} of the data, "
                f"expected {position}"
            )
        position = end
    if data_start + position != size:
        raise ModelFileError(
            f"its tensors need {count(position)} bytes, the file holds "
            f"{size - data_start} "
            "after its header"
        )
    tensors = {}
    file.seek(data_start)
    for name, dtype, shape, _, _ in layout:
        tensors[name] = _read_tensor(file, dtype, shape, name)
    return tensors


def _tensor_entry(
    name: str, entry: Any
) -> tuple[str, torch.dtype, list[int], int, int]:
    """Check one header entry; return name, dtype, shape and byte range."""
    if not (
        isinstance(entry, dict)
        and set(entry) == {"dtype", "shape", "data_offsets"}
        # A list or an object is not a dtype name, and cannot be looked up.
        and isinstance(entry["dtype"], str)
        and entry["dtype"] in DTYPES
        and _int_list(entry["shape"])
        and len(entry["shape"]) <= 64
        and _int_list(entry["data_offsets"])
        and len(entry["data_offsets"]) == 2
    ):
        raise ModelFileError(
            f"invalid entry for tensor {short_repr(name)}: {short_repr(entry)}"
        )
    dtype, shape = DTYPES[entry["dtype"]], entry["shape"]
    begin, end = entry["data_offsets"]
    n_bytes = math.prod(shape) * dtype.itemsize
    if end - begin != n_bytes:
        raise ModelFileError(
            f"tensor {short_repr(name)} of shape {short_repr(shape)} needs "
            f"{count(n_bytes)} bytes, its byte range holds {count(end - begin)}"
        )
    return name, dtype, shape, begin, end


def _int_list(value: Any) -> bool:
    return type(value) is list and all(
        type(item) is int and item >= 0 for item in value
    )


def _read_tensor(
    file: BinaryIO, dtype: torch.dtype, shape: list[int], name: str
) -> torch.Tensor:
    tensor = torch.empty(shape, dtype=dtype)
    if tensor.numel() == 0:
        return tensor
    buffer = memoryview(tensor.reshape(-1).view(torch.uint8).numpy())
    filled = 0
    while filled < len(buffer):
        n_read = file.readinto(buffer[filled:])
        if not n_read:
            raise ModelFileError(f"it ends inside tensor {short_repr(name)}")
        filled += n_read
    # Bytes other than 0 and 1 are not booleans torch can compute with.
    if dtype == torch.bool and int(tensor.view(torch.uint8).max()) > 1:
        raise ModelFileError(f"tensor {short_repr(name)} holds invalid booleans")
    return tensor


def count(number: int) -> str:
    """Write an int of any size in at most about 20 characters."""
    if abs(number) < 10**15:
        return str(number)
    # Digits from the bit length: str() of a 5,000-digit int raises.
    return f"about 1e{int(abs(number).bit_length() * math.log10(2))}"


def short_repr(value: Any) -> str:
    """Repr of ``value`` on one line, cut to 80 characters for error messages."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."
