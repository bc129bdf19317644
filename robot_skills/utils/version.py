"""The one code version every artefact records (skills, demonstrations, results, checkpoints)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The version of the code that wrote an artefact, as one string.

    ``"<package version>+git.<git describe --always --dirty --tags>"`` when the package runs from
    a git checkout (the form PEP 440 calls a local version label), else the package version alone.
    Computed once per process.
    """
    from robot_skills import __version__

    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root,
                             capture_output=True, text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+git.{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return str(__version__)
