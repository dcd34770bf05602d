# SPDX-License-Identifier: BSD-3-Clause
"""Replace a file whole: write a temporary file beside it, then rename it over.

A crash, or ``kill -9``, during the write leaves the old file intact. The
temporary file is named ``.skae-tmp.<name>.<token>`` after the file it
replaces, so that it is recognisable, and it stays locked while it is
written; each later write to the same path removes the temporaries of
earlier writes that no process holds any more. Names that would be too long
for a temporary name are shortened with a digest of the whole name.

The file replaced keeps its permission bits; a new one gets the usual ones
(``0o666`` less the umask). Imports the standard library only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # not POSIX: nothing can tell a live write from a dead one
    fcntl = None  # type: ignore[assignment]

TEMPORARY_PREFIX = ".skae-tmp."
# Bytes a file name may take (NAME_MAX on Linux and macOS).
_NAME_MAX = 255
_TOKEN_CHARS = 16
_DIGEST_CHARS = 16
_HEX_DIGITS = set("0123456789abcdef")


def replace_file(
    path: Path, write: Callable[[BinaryIO], None], *, follow_links: bool
) -> Path:
    """Write a file through ``write(file)``, whole or not at all.

    Parameters
    ----------
    path : pathlib.Path
        The file to write; an existing file is replaced.
    write : callable
        Writes the content to the binary file it is given.
    follow_links : bool
        Whether a symbolic link at ``path`` is followed: True replaces the
        file it points to and keeps the link; False replaces the link itself
        by a regular file and leaves what it points to alone.

    Returns
    -------
    path : pathlib.Path
        The path of the file written: ``path``, or the file its link names.

    Raises
    ------
    ValueError
        If ``path`` is a loop of symbolic links.
    """
    target = _follow(path) if follow_links else path
    mode = _permissions(target)
    remove_abandoned_temporaries(target)
    descriptor, temporary = _locked_temporary(target)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            if mode is not None:
                os.chmod(temporary, mode)
            os.fsync(file.fileno())
            if fcntl is not None:
                # Renamed while still locked: no other write takes it for dead.
                os.replace(temporary, target)
        if fcntl is None:
            os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def temporary_prefix(name: str) -> str:
    """Start of the names of the temporary files that replace the file ``name``."""
    room = _NAME_MAX - len(TEMPORARY_PREFIX) - 1 - _TOKEN_CHARS
    encoded = os.fsencode(name)
    if len(encoded) > room:
        # A shortened name keeps its start, readable, and a digest of the whole.
        digest = hashlib.sha256(encoded).hexdigest()[:_DIGEST_CHARS]
        kept = encoded[: room - 1 - _DIGEST_CHARS]
        name = f"{os.fsdecode(kept)}~{digest}"
    return f"{TEMPORARY_PREFIX}{name}."


def remove_abandoned_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of writes to ``path`` that no process holds.

    A write holds a lock on its temporary file until it has renamed it, and
    the system releases the lock of a process that dies, however it dies.
    Only regular files of this user are removed. Returns the paths removed.
    """
    if fcntl is None:
        return []
    prefix = temporary_prefix(path.name)
    folder = path.parent
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    for name in names:
        token = name[len(prefix) :]
        if (
            name.startswith(prefix)
            and len(token) == _TOKEN_CHARS
            and set(token) <= _HEX_DIGITS
            and _remove_if_abandoned(folder / name)
        ):
            removed.append(folder / name)
    return removed


def _remove_if_abandoned(path: Path) -> bool:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return False
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a write in progress holds it
        # Removed while locked: the write that made it sees its file unlinked.
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(descriptor)


def _locked_temporary(target: Path) -> tuple[int, Path]:
    """Create and lock a new temporary file beside ``target``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        name = temporary_prefix(target.name) + secrets.token_hex(_TOKEN_CHARS // 2)
        temporary = target.with_name(name)
        descriptor = os.open(temporary, flags, 0o666)
        if fcntl is None:
            return descriptor, temporary
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        # Another write may have taken it for abandoned before it was locked.
        if os.fstat(descriptor).st_nlink:
            return descriptor, temporary
        os.close(descriptor)


def _follow(path: Path) -> Path:
    """Return the file a chain of links at ``path`` ends in, existing or not."""
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(
                f"{path} is a loop of symbolic links; give the path of a file."
            ) from None
    return Path(os.path.realpath(path))


def _permissions(path: Path) -> int | None:
    """Permission bits of the regular file at ``path``, else None."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return stat.S_IMODE(info.st_mode) & 0o777 if stat.S_ISREG(info.st_mode) else None
