"""Bounded reads of input files, a YAML loader without aliases, and streaming sha256.

Every file the stack reads from outside (task files, skill contracts, statistics, weights,
perturbation specs) goes through these helpers, so a damaged or hostile input is refused
quickly and with a message naming the path, instead of hanging or exhausting memory:

* :func:`read_bounded` opens the path without blocking (a FIFO named ``*.bddl`` would otherwise
  block ``open`` until a writer appears), refuses anything that is not a regular file (FIFOs,
  sockets, devices, directories), checks the size with ``fstat`` *before* reading and never reads
  more than the limit, even if the file grows meanwhile. Symlinks are followed, so the size checked
  is the target's.
* :class:`NoAliasSafeLoader` is ``yaml.SafeLoader`` that refuses anchors and aliases (a ~1 KB
  "billion laughs" document expands to gigabytes through aliases) and nesting deeper than
  :data:`MAX_YAML_DEPTH` (the composer recurses once per level). :func:`load_yaml_text` /
  :func:`load_yaml_file` use it and turn every parse failure into :class:`YAMLInputError`.
  :class:`NoAliasSafeDumper` writes YAML that this loader reads back (never emits anchors).
* :func:`sha256_file` hashes in chunks (memory independent of the file's size).

All errors are subclasses of :class:`InputFileError` (a ``ValueError``); a path that does not exist
raises ``FileNotFoundError`` as usual.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import IO, Any

import yaml

__all__ = ["DEFAULT_MAX_BYTES", "HASH_CHUNK_BYTES", "MAX_YAML_DEPTH", "InputFileError",
           "NotARegularFileError", "FileTooLargeError", "YAMLInputError", "NoAliasSafeLoader",
           "NoAliasSafeDumper", "open_regular", "read_bounded", "read_bounded_text",
           "load_yaml_text", "load_yaml_file", "dump_yaml", "sha256_file", "sha256_stream"]

DEFAULT_MAX_BYTES = 1 << 20
"""Default cap for small text inputs (task files, contracts, stats, specs): 1 MiB."""
HASH_CHUNK_BYTES = 1 << 20
"""Chunk size of the streaming hash, bytes."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of YAML collections accepted (contracts nest 3 levels)."""

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))


class InputFileError(ValueError):
    """An input file cannot be read safely; the message names the path and the reason."""


class NotARegularFileError(InputFileError):
    """The path is a FIFO, socket, device or directory, not a regular file."""


class FileTooLargeError(InputFileError):
    """The file is larger than the limit for its kind (checked before reading)."""


class YAMLInputError(InputFileError):
    """Malformed YAML, or YAML using anchors/aliases or nesting deeper than
    :data:`MAX_YAML_DEPTH`."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit} ({n} bytes)"
    return f"{n} bytes"


def open_regular(path: str | os.PathLike, what: str = "file") -> tuple[IO[bytes], os.stat_result]:
    """Open ``path`` for binary reading if (after following symlinks) it is a regular file.

    The open never blocks (``O_NONBLOCK``: a FIFO without a writer is refused instead of waiting).

    Args:
        path: the file.
        what: what the file is, for messages (``"task file"``, ``"skill contract"``).

    Returns:
        ``(file object, fstat result)``; the caller closes the file object.

    Raises:
        FileNotFoundError: the path does not exist.
        NotARegularFileError: a directory, FIFO, socket or device.
        OSError: other failures to open (permissions).
    """
    p = os.fspath(path)
    try:
        fd = os.open(p, _OPEN_FLAGS)
    except IsADirectoryError:
        raise NotARegularFileError(f"{what} {p} is a directory, not a regular file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError(f"{what} {p} is {_kind(st.st_mode)}, not a regular file; "
                                       "refusing to read it")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    return f, st


def _check_size(path: str | os.PathLike, size: int, max_bytes: int | None, what: str) -> None:
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(f"{what} {os.fspath(path)} is {_fmt_bytes(size)}, over the limit "
                                f"of {_fmt_bytes(max_bytes)}; refusing to read it")


def read_bounded(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 what: str = "file") -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes.

    The size is checked with ``fstat`` before anything is read, and at most ``max_bytes + 1``
    bytes are ever read (a file that grows past the limit while being read is refused too).

    Args:
        path: the file (symlinks are followed; the target's size counts).
        max_bytes: the limit in bytes (default :data:`DEFAULT_MAX_BYTES`, 1 MiB); None = no limit.
        what: what the file is, for messages.

    Returns:
        The file's content.

    Raises:
        FileNotFoundError: missing path.
        NotARegularFileError: FIFO, socket, device or directory.
        FileTooLargeError: larger than ``max_bytes`` (message names the path, size and limit).
        OSError: other read failures.
    """
    f, st = open_regular(path, what)
    with f:
        _check_size(path, st.st_size, max_bytes, what)
        limit = None if max_bytes is None else max_bytes + 1
        chunks: list[bytes] = []
        total = 0
        while limit is None or total < limit:
            want = HASH_CHUNK_BYTES if limit is None else min(HASH_CHUNK_BYTES, limit - total)
            b = f.read(want)
            if not b:
                break
            chunks.append(b)
            total += len(b)
    if max_bytes is not None and total > max_bytes:
        raise FileTooLargeError(f"{what} {os.fspath(path)} grew past the limit of "
                                f"{_fmt_bytes(max_bytes)} while being read; refusing it")
    return b"".join(chunks)


def read_bounded_text(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_BYTES,
                      what: str = "file", encoding: str = "utf-8") -> str:
    """:func:`read_bounded`, decoded.

    Raises:
        As :func:`read_bounded`; InputFileError: the content is not valid ``encoding``.
    """
    data = read_bounded(path, max_bytes, what)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} {os.fspath(path)} is not {encoding} text ({e})") from None


def sha256_stream(f: IO[bytes], chunk: int = HASH_CHUNK_BYTES,
                  max_bytes: int | None = None) -> tuple[str, int]:
    """Hex sha256 of what remains in ``f``, read in ``chunk``-byte pieces.

    Args:
        f: a binary file object.
        chunk: bytes per read.
        max_bytes: stop with :class:`FileTooLargeError` once more than this was read.

    Returns:
        ``(hex digest, bytes hashed)``.
    """
    h = hashlib.sha256()
    n = 0
    while True:
        b = f.read(chunk)
        if not b:
            break
        n += len(b)
        if max_bytes is not None and n > max_bytes:
            raise FileTooLargeError(f"{getattr(f, 'name', 'stream')}: more than "
                                    f"{_fmt_bytes(max_bytes)} while hashing")
        h.update(b)
    return h.hexdigest(), n


def sha256_file(path: str | os.PathLike, chunk: int = HASH_CHUNK_BYTES,
                max_bytes: int | None = None, what: str = "file") -> str:
    """Hex sha256 of a regular file, streamed in chunks (memory independent of its size).

    Raises:
        FileNotFoundError / NotARegularFileError / FileTooLargeError: as :func:`read_bounded`.
    """
    f, st = open_regular(path, what)
    with f:
        _check_size(path, st.st_size, max_bytes, what)
        return sha256_stream(f, chunk, max_bytes)[0]


# ----------------------------------------------------------------------------- YAML
class NoAliasSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors (``&a``), aliases (``*a``) and deep nesting.

    Raises:
        YAMLInputError: on the first anchor or alias event, or nesting beyond
            :data:`MAX_YAML_DEPTH`.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 - see class docstring
        event = self.peek_event()
        m = event.start_mark
        at = f"line {m.line + 1}, column {m.column + 1}"
        if isinstance(event, yaml.AliasEvent):
            raise YAMLInputError(f"alias *{event.anchor} at {at}: aliases and anchors are not "
                                 "allowed in this file")
        if getattr(event, "anchor", None) is not None:
            raise YAMLInputError(f"anchor &{event.anchor} at {at}: aliases and anchors are not "
                                 "allowed in this file")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YAMLInputError(f"nested deeper than {MAX_YAML_DEPTH} levels at {at}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class NoAliasSafeDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that never writes anchors/aliases (repeated objects are written out)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: D102
        return True


def load_yaml_text(text: str | bytes, source: str = "<string>") -> Any:
    """Parse one YAML document with :class:`NoAliasSafeLoader`.

    Args:
        text: the document.
        source: name used in messages.

    Returns:
        The parsed data (plain dicts, lists, scalars).

    Raises:
        YAMLInputError: malformed YAML, non-safe tags, anchors/aliases, nesting deeper than
            :data:`MAX_YAML_DEPTH`, or scalars Python cannot convert (e.g. an integer with more
            digits than ``sys.get_int_max_str_digits``). The message is ``"<source> is not valid
            YAML: <why>"``.
    """
    try:
        return yaml.load(text, Loader=NoAliasSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as e:
        raise YAMLInputError(f"{source} is not valid YAML: {e}") from None


def load_yaml_file(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_BYTES,
                   what: str = "YAML file") -> Any:
    """:func:`read_bounded` then :func:`load_yaml_text`.

    Raises:
        FileNotFoundError, NotARegularFileError, FileTooLargeError, YAMLInputError (also for
        text that is not UTF-8).
    """
    data = read_bounded(path, max_bytes, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise YAMLInputError(f"{os.fspath(path)} is not valid YAML: not UTF-8 text ({e})"
                             ) from None
    return load_yaml_text(text, str(Path(path)))


def dump_yaml(data: Any) -> str:
    """Block-style YAML without anchors (readable by :func:`load_yaml_text`), keys in order."""
    return yaml.dump(data, Dumper=NoAliasSafeDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True)
