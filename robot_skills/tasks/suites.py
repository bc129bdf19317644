"""Find task-file suites: a directory of ``.bddl`` files, or a LIBERO suite fetched from PyPI.

LIBERO's task files (MIT licence) ship inside the ``libero`` source distribution on PyPI under
``libero/libero/bddl_files/<suite>/``. :func:`fetch_libero_bddl` downloads that sdist with pip
(``pip download --no-deps --no-binary :all: libero==0.1.1``) and extracts only the ``.bddl`` files
into a cache directory:

* cache root: ``$ROBOT_SKILLS_CACHE/libero_bddl`` or ``~/.cache/robot_skills/libero_bddl``;
* ``$ROBOT_SKILLS_LIBERO_BDDL`` may name an existing ``bddl_files`` directory (holding
  ``libero_goal/`` etc.), which is then used as is and nothing is downloaded.

The project's own suites ship as package data (:data:`PROJECT_SUITES`): ``compositions`` holds
long-horizon tasks written by this project in LIBERO's BDDL dialect, in the scenes of libero_goal
and libero_90 (scene layouts copied from LIBERO's files; see its ``README.md``).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Collection
from importlib.resources import files
from pathlib import Path, PurePosixPath

from robot_skills.tasks.bddl import BddlParseError, load_bddl

LIBERO_SUITES = ("libero_goal", "libero_spatial", "libero_object", "libero_10", "libero_90")
LIBERO_PIN = "libero==0.1.1"
_MARKER = "libero/libero/bddl_files/"
PROJECT_SUITES = ("compositions",)
"""Suites shipped inside this package, under ``robot_skills/tasks/data/<name>/``."""


class SuiteNotFoundError(FileNotFoundError):
    """A suite name or path could not be resolved to a directory of ``.bddl`` files."""


def cache_root() -> Path:
    """Directory holding the fetched ``bddl_files`` (``<cache>/libero_bddl``)."""
    base = os.environ.get("ROBOT_SKILLS_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "robot_skills"
    return root / "libero_bddl"


def _pip_download(dest: Path) -> Path:
    """Download LIBERO's sdist into ``dest`` with pip; return the archive path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           LIBERO_PIN, "-d", str(dest)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"could not download {LIBERO_PIN} from PyPI ({' '.join(cmd)}):\n"
                           f"{proc.stderr[-2000:]}")
    archives = sorted(dest.glob("*.tar.gz"))
    if not archives:
        raise RuntimeError(f"pip download of {LIBERO_PIN} produced no .tar.gz in {dest}")
    return archives[0]


def extract_bddl_files(archive: Path, dest: Path) -> int:
    """Extract only ``*/libero/libero/bddl_files/**.bddl`` from an sdist into ``dest``.

    Members are written by their path below ``bddl_files/``; absolute paths, ``..`` components,
    links and non-regular files are skipped, so nothing can land outside ``dest``.

    Returns:
        Number of ``.bddl`` files written.

    Raises:
        RuntimeError: if the archive holds no such files.
    """
    n = 0
    dest = Path(dest)
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            if not m.isfile() or not m.name.endswith(".bddl"):
                continue
            p = PurePosixPath(m.name)
            if p.is_absolute() or ".." in p.parts:
                continue
            s = str(p)
            k = s.find(_MARKER)
            if k < 0:
                continue
            rel = PurePosixPath(s[k + len(_MARKER):])
            if not rel.parts or ".." in rel.parts:
                continue
            out = dest.joinpath(*rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            f = tar.extractfile(m)
            if f is None:
                continue
            out.write_bytes(f.read())
            n += 1
    if n == 0:
        raise RuntimeError(f"{archive} holds no {_MARKER}**.bddl files")
    return n


def fetch_libero_bddl(dest: Path | None = None,
                      downloader: Callable[[Path], Path] = _pip_download) -> Path:
    """Download LIBERO's sdist and extract its ``bddl_files`` into ``dest`` (default
    :func:`cache_root`). Writes into a temporary directory first and renames it into place.

    Args:
        dest: target directory; it will hold ``libero_goal/``, ``libero_spatial/``, ….
        downloader: ``downloader(tmpdir) -> archive path`` (tests replace it).

    Returns:
        ``dest``.

    Raises:
        RuntimeError: if the download fails or the archive holds no task files.
    """
    dest = Path(dest) if dest is not None else cache_root()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        tmp = Path(tmp)
        dl = tmp / "dl"
        dl.mkdir()
        archive = downloader(dl)
        staging = tmp / "bddl_files"
        extract_bddl_files(archive, staging)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    return dest


def project_suite_dir(name: str) -> Path:
    """The directory of a suite shipped with this package (one of :data:`PROJECT_SUITES`).

    Raises:
        SuiteNotFoundError: an unknown name, or the package data is missing (an install that
            left out ``robot_skills/tasks/data/<name>/*.bddl``).
    """
    if name not in PROJECT_SUITES:
        raise SuiteNotFoundError(f"{name!r} is not one of this package's suites {list(PROJECT_SUITES)}")
    d = Path(str(files("robot_skills.tasks").joinpath("data", name)))
    if not d.is_dir() or not any(d.glob("*.bddl")):
        raise SuiteNotFoundError(f"the package's suite {name!r} has no .bddl files in {d} "
                                 f"(package data missing from this install?)")
    return d


def resolve_suite(name_or_path: str | os.PathLike,
                  downloader: Callable[[Path], Path] = _pip_download) -> Path:
    """Return the directory of ``.bddl`` files for a suite.

    Args:
        name_or_path: a directory of ``.bddl`` files (used as is), one of this package's suites
            (:data:`PROJECT_SUITES`: ``compositions``), or a LIBERO suite name
            (``libero_goal``, ``libero_spatial``, ``libero_object``, ``libero_10``, ``libero_90``).
            A suite name is looked up in ``$ROBOT_SKILLS_LIBERO_BDDL`` if set, else in the cache,
            which is filled by :func:`fetch_libero_bddl` on first use.
        downloader: passed to :func:`fetch_libero_bddl`.

    Raises:
        SuiteNotFoundError: a path that is not a directory with ``.bddl`` files, or an unknown
            suite name, or ``$ROBOT_SKILLS_LIBERO_BDDL`` lacking the suite.
    """
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not any(p.glob("*.bddl")):
            raise SuiteNotFoundError(f"{p} holds no .bddl files")
        return p
    name = str(name_or_path)
    if name in PROJECT_SUITES:
        return project_suite_dir(name)
    if name not in LIBERO_SUITES:
        raise SuiteNotFoundError(f"{name!r} is neither a directory of .bddl files, nor one of "
                                 f"this package's suites {list(PROJECT_SUITES)}, nor a LIBERO "
                                 f"suite name {list(LIBERO_SUITES)}")
    env = os.environ.get("ROBOT_SKILLS_LIBERO_BDDL")
    if env:
        d = Path(env).expanduser() / name
        if not d.is_dir() or not any(d.glob("*.bddl")):
            raise SuiteNotFoundError(f"ROBOT_SKILLS_LIBERO_BDDL={env} has no {name}/*.bddl")
        return d
    root = cache_root()
    d = root / name
    if not (d.is_dir() and any(d.glob("*.bddl"))):
        fetch_libero_bddl(root, downloader)
    if not (d.is_dir() and any(d.glob("*.bddl"))):
        raise SuiteNotFoundError(f"LIBERO's sdist has no bddl_files/{name}/ (looked in {root})")
    return d


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "special file"


def scan_suite(directory: str | os.PathLike, supported_categories: Collection[str],
               max_bytes: int | None = None) -> tuple[list[Path], dict[Path, list[str]]]:
    """Sort a suite's task files into supported ones and ones that cannot be run.

    Args:
        directory: a directory of ``.bddl`` files.
        supported_categories: the object/fixture categories the world that will run the tasks can
            build (the simulator's proxy assets; on a real arm, what perception knows).
        max_bytes: size limit per task file (None = :data:`~robot_skills.tasks.bddl.
            MAX_TASK_FILE_BYTES`, 1 MiB).

    Returns:
        ``(supported, unsupported)``: sorted paths whose categories are all supported, and
        path -> problems (``"unsupported category: microwave"``, ``"not a regular file (a
        FIFO); not read"``, ``"unreadable: ..."`` for a dangling link, or the parse error, which
        includes a file over the size limit) for the rest. Never raises for a bad file and never
        opens anything but a regular file, so a FIFO named ``*.bddl`` cannot block the scan.

    Raises:
        SuiteNotFoundError: if ``directory`` is not a directory.
    """
    d = Path(directory)
    if not d.is_dir():
        raise SuiteNotFoundError(f"{d} is not a directory")
    supported: list[Path] = []
    unsupported: dict[Path, list[str]] = {}
    for p in sorted(d.glob("*.bddl")):
        try:
            mode = p.stat().st_mode  # follows symlinks: a link to a regular file is fine
        except OSError as e:
            unsupported[p] = [f"unreadable: {e}"]
            continue
        if not stat.S_ISREG(mode):
            unsupported[p] = [f"not a regular file ({_file_kind(mode)}); not read"]
            continue
        try:
            task = load_bddl(p, max_bytes)
        except (BddlParseError, OSError) as e:
            unsupported[p] = [f"parse error: {e}"]
            continue
        bad = sorted(task.categories() - set(supported_categories))
        if bad:
            unsupported[p] = [f"unsupported category: {c}" for c in bad]
        else:
            supported.append(p)
    return supported, unsupported
