"""Where the tests find LIBERO's task files (MIT): never copied into the project.

Order: ``$ROBOT_SKILLS_LIBERO_BDDL``; ``../shared/libero_bddl`` beside the checkout; the
workplace's ``/work/shared/libero_bddl``; the cache ``rs-fetch-libero`` fills. Tests that need the
files skip when none exists.
"""

from __future__ import annotations

import os
from pathlib import Path


def libero_bddl_dir() -> Path:
    """The first existing directory holding LIBERO's suites (``libero_goal/`` …)."""
    candidates = []
    if os.environ.get("ROBOT_SKILLS_LIBERO_BDDL"):
        candidates.append(Path(os.environ["ROBOT_SKILLS_LIBERO_BDDL"]))
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "libero_bddl",
                   Path("/work/shared/libero_bddl")]
    cache = Path(os.environ.get("ROBOT_SKILLS_CACHE", Path.home() / ".cache" / "robot_skills"))
    candidates.append(cache / "libero_bddl")
    for c in candidates:
        if (c / "libero_goal").is_dir():
            return c
    return candidates[0]


LIBERO_BDDL = libero_bddl_dir()
