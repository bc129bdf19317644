"""Where the tests find LIBERO's task files (MIT): the way a user gets them, never copied here.

``robot_skills.tasks.suites.resolve_suite`` — what ``rs-fetch-libero`` and every command use —
returns ``$ROBOT_SKILLS_LIBERO_BDDL/<suite>`` when that variable names a local copy, else the cache
(``$ROBOT_SKILLS_CACHE`` or ``~/.cache/robot_skills``), fetching LIBERO's sdist from PyPI into it
on first use. CI runs ``rs-fetch-libero`` once before the tests. No test skips for missing files:
a fetch that fails fails the test run.
"""

from __future__ import annotations

from pathlib import Path

from robot_skills.tasks.suites import resolve_suite


def libero_bddl_dir() -> Path:
    """The directory holding LIBERO's suites (``libero_goal/`` …), fetched on first use.

    Raises:
        robot_skills.tasks.suites.SuiteNotFoundError / RuntimeError: when the files cannot be
            found or fetched.
    """
    return resolve_suite("libero_goal").parent


LIBERO_BDDL = libero_bddl_dir()
