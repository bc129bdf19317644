"""Crash-safe file and directory writes, and content hashes.

Every writer follows the same recipe: write a temporary file *in the destination directory*
(so the final rename stays on one file system), ``fsync`` it, then ``os.replace`` it over the
destination (atomic on POSIX), then ``fsync`` the directory so the rename itself is durable.
A crash at any point leaves either the old file or the new one, never a torn mix.

Directories (:func:`atomic_dir`) are built under a temporary name and swapped in with one atomic
``renameat2(RENAME_EXCHANGE)`` where the file system supports it, so the destination path always
names a complete directory. A process killed mid-write leaves only temporary names
(``.<name>.<8 chars>.tmp``, ``.<name>.<8 chars>.old``); :func:`clean_stale_temps` removes them at
the next start (and puts an ``.old`` back if the kill came between the two renames of the
fallback swap). :func:`check_writable` probes a destination before any long job writes to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TEMP_NAME_RE = re.compile(r"^\.(?P<name>.+)\.(?P<tag>[a-z0-9_]{8})\.(?P<kind>tmp|old)$")
"""The names this module's writers give temporary files and directories: ``.<name>.<tag>.tmp``
(a file or directory being built beside ``<name>``; ``tag`` is 8 hex digits from ``uuid4`` or 8
characters from ``tempfile.mkdtemp``) and ``.<name>.<tag>.old`` (a directory moved aside)."""

PROBE_NAME = "write-probe"
"""``<name>`` of :func:`check_writable`'s probe files (``.write-probe.<hex>.tmp``)."""


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


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    """libc's ``renameat2`` (glibc >= 2.28), or None where there is none."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the paths ``a`` and ``b`` (both must exist). False where unsupported.

    Raises:
        OSError: the exchange is supported but failed (permissions, I/O).
    """
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _remove(path: Path) -> None:
    """Delete a file, link or directory tree; missing is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _swap_dir_in(new: Path, path: Path) -> None:
    """Put the complete directory ``new`` at ``path`` (a sibling); delete what ``path`` held.

    ``path`` names a complete directory at every instant: an existing one is exchanged with
    ``new`` in one ``renameat2(RENAME_EXCHANGE)``. Where that is unsupported, the old directory is
    renamed aside to ``.<name>.<hex>.old`` first; a kill between the two renames leaves ``path``
    missing and the ``.old`` complete, which :func:`clean_stale_temps` renames back.
    """
    parent = path.parent
    if path.exists() or path.is_symlink():
        if _exchange(new, path):
            _fsync_dir(parent)
            _remove(new)  # now holds the old directory (a kill here leaves a stale .tmp)
            return
        old = parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(path, old)
        os.replace(new, path)
        _fsync_dir(parent)
        _remove(old)
        return
    os.replace(new, path)
    _fsync_dir(parent)


def _umask() -> int:
    """The process's file-mode creation mask (read without changing it where Linux allows)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory under a temporary name, then move it into place at ``path``.

    Yields a fresh temporary directory beside ``path`` (``.<name>.<8 chars>.tmp``). On clean exit
    every file and directory in it is fsynced and it replaces ``path`` in one atomic exchange (see
    :func:`_swap_dir_in`), so a process killed at any instant leaves ``path`` naming either the
    complete old directory or the complete new one; leftovers carry temporary names that
    :func:`clean_stale_temps` removes. On an exception the temporary directory is deleted and
    ``path`` is untouched.

    Raises:
        FileExistsError: if ``path`` exists and ``overwrite`` is False.
        OSError: the parent cannot be created or written.
    """
    path = Path(path)
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it a plain mkdir's mode
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
            elif f.is_dir():
                _fsync_dir(f)
        _fsync_dir(tmp)
        _swap_dir_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def clean_stale_temps(directory: str | os.PathLike, names: Iterable[str] | None = None
                      ) -> list[Path]:
    """Remove the temporary files and directories a killed writer left in ``directory``.

    Only entries named by this module's writers are touched (:data:`TEMP_NAME_RE`:
    ``.<name>.<tag>.tmp`` and ``.<name>.<tag>.old``), and with ``names`` only those whose
    ``<name>`` is listed, so a command cleaning its own leftovers never deletes another command's
    files in a shared directory. An ``.old`` directory whose ``<name>`` no longer exists is the
    only complete copy (a kill between the two renames of the fallback swap): it is renamed back
    to ``<name>`` instead of deleted. Not recursive.

    Args:
        directory: the directory to clean; a missing directory is fine (nothing to do).
        names: destination names whose leftovers may be removed (e.g. ``["demos.hdf5"]``);
            None = every leftover of this module's patterns.

    Returns:
        The leftovers removed or renamed back, sorted.

    Raises:
        OSError: a leftover could not be removed or renamed (permissions, I/O).
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    allowed = None if names is None else set(names)
    done: list[Path] = []
    for entry in sorted(d.iterdir()):
        m = TEMP_NAME_RE.match(entry.name)
        if m is None or (allowed is not None and m["name"] not in allowed):
            continue
        dest = d / m["name"]
        if m["kind"] == "old" and not (dest.exists() or dest.is_symlink()):
            os.replace(entry, dest)
            _fsync_dir(d)
            log.warning("restored %s from %s (a directory swap was interrupted)", dest, entry.name)
        else:
            _remove(entry)
            log.info("removed stale temporary %s", entry)
        done.append(entry)
    return done


def check_writable(directory: str | os.PathLike) -> Path:
    """Make sure files can be created in ``directory`` before a long job writes its results there.

    Creates the directory (and its parents) if needed, then creates, writes, fsyncs and removes a
    probe file (``.write-probe.<hex>.tmp``) in it.

    Returns:
        The directory.

    Raises:
        PermissionError: no permission to create it or to write in it (the message names the
            directory).
        OSError: any other reason it cannot be written (a path component is a regular file, a
            read-only or full file system, ...); the message names the directory.
    """
    d = Path(directory)
    probe = d / f".{PROBE_NAME}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"robot-skills write probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(probe)
    except OSError as e:
        reason = e.strerror or str(e)
        # OSError(errno, ...) builds the matching subclass (PermissionError for EACCES / EPERM)
        raise OSError(e.errno, f"directory {d} is not writable: {reason}", str(d)) from e
    return d


@contextlib.contextmanager
def exclusive_lock(lock_path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created) for the duration of the block.

    Commands that resume work in a shared directory take it before cleaning leftovers, so a
    second command on the same destination fails at once instead of deleting the first one's
    temporary files. The lock dies with the process (a killed holder never blocks a rerun).

    Args:
        lock_path: the lock file (its directory must exist); it is left in place.
        what: the job, for the error message (e.g. ``"rs-collect of <run_dir>/demos.hdf5"``).

    Raises:
        RuntimeError: another process holds the lock (the message names it and its pid).
        OSError: the lock file cannot be created.
    """
    import fcntl

    path = Path(lock_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RuntimeError(f"{what}: {path} is locked by another running process (pid "
                               f"{holder}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 digest of the file at ``path``, streamed in ``chunk``-byte pieces
    (memory independent of the file's size).

    Raises:
        FileNotFoundError: if the file does not exist.
        robot_skills.utils.files.NotARegularFileError: a FIFO, device or directory (refused
            without blocking, instead of waiting for a writer).
    """
    from robot_skills.utils.files import sha256_file

    return sha256_file(path, chunk)
