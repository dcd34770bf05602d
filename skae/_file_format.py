# SPDX-License-Identifier: BSD-3-Clause
"""The safetensors container of a model file: format number, checksum, reading.

A model file is a safetensors file whose metadata hold a plain format number,
the JSON document (:mod:`skae._encoding`) and a SHA-256 checksum of both and of
every tensor. This module refuses files that are not such a file (naming the
common look-alikes: pickles, zip archives, ``.npy`` files) before parsing
anything, reads the container with every size checked first, checks the format
and the checksum, and parses the document. It knows nothing of estimators.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, BinaryIO

import torch

from skae._model_file import (
    HEADER_START,
    MAX_HEADER_BYTES,
    ModelFileError,
    check_json_containers,
    parse_json,
    read_header,
    read_tensors,
    short_repr,
)

# Format 2 puts the JSON document under the checksum too; format 1 files,
# whose checksum covers the tensors only, still load. Format 3 stores fields
# under public-facing names; those of formats 1 and 2 are renamed as they
# load (skae._fitted_state.RENAMED_FIELDS). Format 4 adds the residuals'
# input ranges; earlier files load with unbounded ones.
FORMAT_VERSION = 4
_FORMATS_READ = (1, 2, 3, 4)
FIRST_PUBLIC_NAMES_FORMAT = 3
# Metadata keys of the safetensors file: a plain format number, the JSON,
# then the checksum of both and of every tensor.
FORMAT_KEY = "skae.format"
DOCUMENT_KEY = "skae.model"
CHECKSUM_KEY = "skae.sha256"
# How other files that are easy to mistake for a model file begin.
_FOREIGN_SIGNATURES = {
    b"\x80": "a pickle (from pickle, joblib or torch.save)",
    b"PK\x03\x04": "a zip archive (torch.save writes these)",
    b"\x93NUMPY": "a NumPy .npy file",
}


def check_loadable(content: bytes, document: str, name: str) -> None:
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
            f"{name} is too large for a skae model file: {exc}, "
            "so skae.load would refuse it. A network of fewer layers fits; pickle "
            "and joblib store any model (load those from trusted sources only)."
        ) from None


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


def read_safetensors(
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


def read_document(
    metadata: dict[str, str], tensors: dict[str, torch.Tensor], path: Path
) -> tuple[int, dict[str, Any]]:
    """Check the format and the checksum, then parse the JSON document.

    Returns the file's format number and its document.
    """
    file_format = _file_format(metadata, path)
    # Format 2 checks the checksum before interpreting anything it covers.
    if file_format >= 2 and metadata.get(CHECKSUM_KEY) != checksum(metadata, tensors):
        raise _corrupted(path, "its content does")
    try:
        document = parse_json(metadata.get(DOCUMENT_KEY, ""), "its JSON document")
    except ModelFileError as exc:
        raise ValueError(
            f"{path} is not a valid skae model file: {exc}. It may have been "
            "corrupted or tampered with; save the model again with skae.save."
        ) from None
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a valid skae model file: no JSON document.")
    if file_format == 1 and document.pop("sha256", None) != _digest(tensors):
        raise _corrupted(path, "its tensors do")
    return file_format, document


def _file_format(metadata: dict[str, str], path: Path) -> int:
    if FORMAT_KEY not in metadata:
        raise ValueError(
            f"{path} is a safetensors file, but not one written by skae.save (it has "
            "no skae metadata)."
        )
    text = metadata[FORMAT_KEY]
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


def checksum(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the format number, the JSON document and every tensor."""
    digest = hashlib.sha256()
    for key in (FORMAT_KEY, DOCUMENT_KEY):
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
