"""Arm descriptions as data: kinematics, limits, home pose and the MuJoCo model the shared IK uses.

:func:`get_arm` returns an :class:`~robot_skills.robots.description.ArmDescription` by name
(:data:`ARM_NAMES`: ``panda``, ``fr3``, ``ur5e``, ``xarm7``); each arm's module documents the
published figures it encodes and their source.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robot_skills.robots.description import ArmDescription

_MODULES = {
    "panda": "robot_skills.robots.panda",
    "fr3": "robot_skills.robots.fr3",
    "ur5e": "robot_skills.robots.ur5e",
    "xarm7": "robot_skills.robots.xarm7",
}
ARM_NAMES: tuple[str, ...] = tuple(_MODULES)
"""Names :func:`get_arm` knows."""


def get_arm(name: str) -> ArmDescription:
    """The :class:`ArmDescription` registered as ``name`` (one shared, immutable instance).

    Raises:
        ValueError: ``unknown arm 'name'; known: [...]``.
    """
    if not isinstance(name, str) or name not in _MODULES:
        raise ValueError(f"unknown arm {name!r}; known: {sorted(_MODULES)}")
    return _load(name)


@lru_cache(maxsize=None)
def _load(name: str) -> ArmDescription:
    return importlib.import_module(_MODULES[name]).arm_description()
