"""Predicate state from object poses alone (what a real arm's perception stack provides).

See :mod:`robot_skills.perception.pose_predicates`: :class:`PoseWorldModel` (the geometry a user
writes for a real arm, or the simulator derives from its scene), :func:`evaluate_pose_predicates`
and :class:`PoseTaskWorld`, the :class:`~robot_skills.execution.interfaces.TaskWorld` of a real arm.
"""

from robot_skills.perception.pose_predicates import (
    REGION_KINDS,
    DoorGeometry,
    DrawerGeometry,
    FixtureGeometry,
    KnobGeometry,
    MissingPoseError,
    ObjectGeometry,
    PoseTaskWorld,
    PoseTolerances,
    PoseWorldModel,
    RegionGeometry,
    UnsupportedPredicateError,
    door_angle,
    drawer_travel,
    evaluate_pose_predicates,
    knob_angle,
)

__all__ = [
    "REGION_KINDS", "DoorGeometry", "DrawerGeometry", "FixtureGeometry", "KnobGeometry", "MissingPoseError",
    "ObjectGeometry", "PoseTaskWorld", "PoseTolerances", "PoseWorldModel", "RegionGeometry",
    "UnsupportedPredicateError", "door_angle", "drawer_travel", "evaluate_pose_predicates", "knob_angle",
]
