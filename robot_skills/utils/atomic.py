"""Crash-safe file and directory writes, and content hashes.

Every writer follows the same recipe: write a temporary file *in the destination directory*
(so the final rename stays on one file system), ``fsync`` it, then ``os.replace`` it over the
destination (atomic on POSIX), then ``fsync`` the directory so the rename itself is durable.
A crash at any point leaves either the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync_dir(path: Path) -> None:
    """``fsync`` a directory so renames inside it survive a power loss (no-op where unsupported)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same dir, fsync, ``os.replace``).

    Returns:
        The destination path.

    Raises:
        FileNotFoundError: if the parent directory does not exist.
    """
    with atomic_temp_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2, *,
                      sort_keys: bool = True, default: Any = None) -> Path:
    """Serialise ``obj`` as JSON (no NaN) and write it atomically.

    Args:
        sort_keys: sort object keys (False keeps insertion order, e.g. metadata first).
        default: ``json.dumps``'s fallback for objects it cannot serialise (e.g. ``str``).

    Raises:
        ValueError: if ``obj`` holds NaN/inf floats (not valid JSON).
        TypeError: if ``obj`` is not JSON-serialisable.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=False, default=default)
    return atomic_write_text(path, text + "\n")


@contextlib.contextmanager
def atomic_temp_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on clean exit fsync it and rename it over ``path``.

    Use for writers that need a file name rather than bytes (h5py, safetensors ``save_file``).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {parent} does not exist")
    tmp = parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(parent)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory under a temporary name, then move it into place at ``path``.

    Yields a fresh temporary directory beside ``path``. On clean exit every file in it is fsynced
    and it replaces ``path``: an existing ``path`` is first renamed aside and deleted only after the
    new one is in place, so a crash never loses both. On an exception the temporary directory is
    deleted and ``path`` is untouched.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
        _fsync_dir(tmp)
        old = None
        if path.exists():
            old = parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 digest of the file at ``path``.

    Raises:
        FileNotFoundError: if the file does not exist.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
