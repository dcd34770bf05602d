# SPDX-License-Identifier: BSD-3-Clause
"""Data sets for ``skae compare``: the bundled digits, or a user's file.

Every loader returns a :class:`Dataset`: a float matrix ``X``, optional labels,
and the image size (height, width) when the rows are images, so that
reconstructions can be shown as pictures. It is called ``image_size``, not
``image_shape``: the estimators' ``image_shape`` is (channels, height, width).

Problems with the input raise ``ValueError`` (or ``OSError`` for files that
cannot be read) with a message that names the file and says what to do.
"""

from __future__ import annotations

import errno
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state

from skae._model_file import file_kind, open_regular_file

BUILTIN = "digits"
FILE_SUFFIXES = (".npz", ".npy", ".csv")
# Names of the MNIST-style archive layout (``keras.datasets.mnist`` uses it too).
NPZ_IMAGES, NPZ_LABELS = ("x_train", "x_test"), ("y_train", "y_test")
_DATA_FILE_ADVICE = "give the path of a data file"


@dataclass(frozen=True)
class Dataset:
    """Samples to compare methods on.

    Attributes
    ----------
    name : str
        Short name for titles: 'digits' or the file's name.
    X : ndarray of shape (n_samples, n_features)
        Features as float32. Pixels of 8-bit images (and digits) are scaled
        to [0, 1]; other values are kept as they are.
    y : ndarray of shape (n_samples,) or None
        Labels, when the source has them.
    image_size : tuple of int or None
        (height, width) when each row of X is a flattened single-channel
        image, else None.
    n_available : int
        Samples in the source before any subsampling.
    """

    name: str
    X: np.ndarray
    y: np.ndarray | None
    image_size: tuple[int, int] | None
    n_available: int


def load_dataset(
    source: str | Path,
    *,
    n_samples: int | None = None,
    target: str | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> Dataset:
    """Load 'digits' or a ``.npz``, ``.npy`` or ``.csv`` file.

    Parameters
    ----------
    source : str or path-like
        ``'digits'`` for scikit-learn's bundled 8x8 digits, or the path of

        - an MNIST-style ``.npz`` archive with arrays ``x_train`` (images,
          0..255) and ``y_train`` (labels), and optionally ``x_test`` and
          ``y_test``, which are appended;
        - a ``.npy`` file holding a 2-D array (samples x features) or a 3-D
          array (samples x height x width, taken as images);
        - a ``.csv`` file with a header row and numeric columns.

    n_samples : int or None, default=None
        Keep a random subset of this many samples; None keeps all of them.

    target : str or None, default=None
        For a CSV file, the column holding labels; it is removed from the
        features.

    random_state : int, RandomState instance or None, default=None
        Picks the subset when ``n_samples`` is smaller than the data.

    Returns
    -------
    dataset : Dataset
        Features, labels and image size (height, width).

    Examples
    --------
    >>> from skae._datasets import load_dataset
    >>> data = load_dataset("digits", n_samples=100, random_state=0)
    >>> data.X.shape, data.y.shape, data.image_size
    ((100, 64), (100,), (8, 8))
    """
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples}.")
    if target is not None and Path(source).suffix.lower() != ".csv":
        raise ValueError(
            f"target={target!r} names a CSV column, but {source} is not a CSV file; "
            "drop the target option."
        )
    if str(source) == BUILTIN:
        name = BUILTIN
        X, y, image_size = _load_digits()
    else:
        path = _existing_file(source)
        name = path.name
        suffix = path.suffix.lower()
        # Opened once, checked on the descriptor: never blocks on a named pipe.
        with open_regular_file(path, _DATA_FILE_ADVICE) as file:
            if suffix == ".npz":
                X, y, image_size = _load_npz(file, path)
            elif suffix == ".npy":
                X, y, image_size = _load_npy(file, path)
            else:
                X, y, image_size = _load_csv(file, path, target)
    n_available = X.shape[0]
    if n_samples is not None and n_samples < n_available:
        rows = np.sort(
            check_random_state(random_state).choice(
                n_available, n_samples, replace=False
            )
        )
        X, y = X[rows], None if y is None else y[rows]
    # Scale after subsampling: MNIST as float would take four times the memory.
    X = _to_float(X, image_size, name)
    return Dataset(name, X, y, image_size, n_available)


def _existing_file(source: str | Path) -> Path:
    """Check that ``source`` names a data file; say what it is otherwise."""
    path = Path(source)
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ValueError(
            f"{path} is a loop of symbolic links; {_DATA_FILE_ADVICE}."
        ) from None
    if mode is not None and stat.S_ISREG(mode):
        if path.suffix.lower() not in FILE_SUFFIXES:
            raise ValueError(
                f"{path} has an unsupported type {path.suffix or '(no suffix)'!r}; "
                f"use a {', '.join(FILE_SUFFIXES)} file or '{BUILTIN}'."
            )
        return path
    if mode is not None:
        # A folder, a named pipe (which would block), a device such as /dev/zero.
        raise ValueError(f"{path} is {file_kind(mode)}; {_DATA_FILE_ADVICE}.")
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link to a missing file; check it.")
    if path.suffix.lower() in FILE_SUFFIXES or len(path.parts) > 1:
        raise ValueError(f"no such file: {path}; check the path.")
    raise ValueError(
        f"{str(source)!r} is neither the built-in data set '{BUILTIN}' nor an "
        f"existing file; give the path of a {', '.join(FILE_SUFFIXES)} file "
        "(e.g. an MNIST-style archive mnist.npz)."
    )


def _load_digits() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    digits = load_digits()
    # Digits' pixels take the values 0..16.
    return digits.data / 16.0, digits.target, (8, 8)


def _load_npz(
    file: BinaryIO, path: Path
) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
    try:
        archive = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"cannot read {path}: not a valid .npz archive.") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path} holds a single array, not an .npz archive; rename it to .npy."
        )
    with archive:
        keys = set(archive.files)
        if not {NPZ_IMAGES[0], NPZ_LABELS[0]} <= keys:
            raise ValueError(
                f"{path} has arrays {sorted(keys)}, but an MNIST-style archive "
                f"needs {NPZ_IMAGES[0]!r} and {NPZ_LABELS[0]!r} (and optionally "
                f"{NPZ_IMAGES[1]!r} and {NPZ_LABELS[1]!r})."
            )
        parts = [NPZ_IMAGES[0]]
        if {NPZ_IMAGES[1], NPZ_LABELS[1]} <= keys:
            parts.append(NPZ_IMAGES[1])
        names = parts + [key.replace("x_", "y_") for key in parts]
        try:
            arrays = {name: archive[name] for name in names}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(
                f"cannot read {path}: the archive is damaged ({exc})."
            ) from exc
    for name, value in arrays.items():
        # A member that numpy.save did not write comes out as its raw bytes.
        if not isinstance(value, np.ndarray):
            raise ValueError(
                f"{path}: its member {name!r} is not a NumPy array (.npy) but raw "
                "bytes; write the archive with numpy.savez."
            )
    images = [arrays[key] for key in parts]
    labels = [arrays[key.replace("x_", "y_")] for key in parts]
    shapes = [part.shape for part in images]
    if any(len(shape) < 2 for shape in shapes) or len({s[1:] for s in shapes}) > 1:
        raise ValueError(
            f"{path}: expected images of shape (n, height, width) or rows of shape "
            f"(n, n_features), got {shapes}."
        )
    X = np.concatenate(images)
    y = np.concatenate(labels)
    if y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"{path}: {len(X)} images but labels of shape {y.shape}; expected one "
            "label per image."
        )
    image_size = (int(X.shape[1]), int(X.shape[2])) if X.ndim == 3 else None
    return X.reshape(len(X), -1), y, image_size


def _load_npy(
    file: BinaryIO, path: Path
) -> tuple[np.ndarray, None, tuple[int, int] | None]:
    try:
        X = np.load(file, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(
            f"cannot read {path}: not a numeric .npy array ({exc})."
        ) from exc
    if X.ndim not in (2, 3):
        raise ValueError(
            f"{path} holds an array of shape {X.shape}; expected 2-D (samples x "
            "features) or 3-D (samples x height x width)."
        )
    image_size = (int(X.shape[1]), int(X.shape[2])) if X.ndim == 3 else None
    return X.reshape(len(X), -1), None, image_size


def _load_csv(
    file: BinaryIO, path: Path, target: str | None
) -> tuple[np.ndarray, np.ndarray | None, None]:
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "empty"
        raise ValueError(f"cannot read {path} as CSV: {reason}.") from exc
    y = None
    if target is not None:
        if target not in frame.columns:
            raise ValueError(
                f"{path} has no column {target!r}; its columns are "
                f"{list(frame.columns)[:10]}."
            )
        y = frame.pop(target).to_numpy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            values = frame[column].dropna()
            example = f" (e.g. {values.iloc[0]!r})" if len(values) else ""
            raise ValueError(
                f"column {column!r} of {path} is not numeric{example}; "
                "drop it, or name it as the target (labels) column."
            )
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise ValueError(
            f"{path} has {frame.shape[0]} rows and {frame.shape[1]} feature "
            "columns; need at least one of each."
        )
    return frame.to_numpy(), y, None


def _to_float(
    X: np.ndarray, image_size: tuple[int, int] | None, name: str
) -> np.ndarray:
    if X.dtype.kind == "c":
        # Casting would drop the imaginary part silently; the estimators refuse
        # complex data, as scikit-learn's do.
        raise ValueError(
            f"{name} holds complex values ({X.dtype}); expected real numbers. "
            "Convert them first, for instance to their magnitude (numpy.abs) or "
            "to real and imaginary parts as separate features."
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name} holds {X.dtype} values; expected numbers.")
    eight_bit_images = image_size is not None and X.dtype == np.uint8
    X = X.astype(np.float32)
    if eight_bit_images:
        X /= 255.0
    if not np.all(np.isfinite(X)):
        raise ValueError(
            f"{name} contains missing or infinite values; impute or drop them first."
        )
    return X
