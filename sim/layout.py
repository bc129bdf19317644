"""Where things are in the simulated world. The world frame *is* the robot base frame.

LIBERO's task files give region ranges ``(x_min, y_min, x_max, y_max)`` in the frame of the table
(or floor) they target: origin at the table top's centre, +x away from the robot, +z up. The robot
base (Panda ``link0``) sits at the world origin on the table-top plane; the table's frame is offset
along +x so that every region of the supported suites lies inside the arm's top-down workspace.
"""

from __future__ import annotations

import numpy as np

from robot_skills.robots.panda import CONTROL_HZ, PHYSICS_TIMESTEP  # noqa: F401  (the arm's rates)

TABLE_ORIGIN = np.array([0.63, 0.0, 0.0])
"""Table-frame origin in the world (= robot base) frame, m. Table top surface is at z = 0."""
TABLE_SIZE = np.array([1.2, 1.2])
"""Table top extent (x, y), m; its near edge is just in front of the robot base."""
TABLE_TOP_RANGE = (-float(TABLE_SIZE[0]) / 2, -float(TABLE_SIZE[1]) / 2,
                   float(TABLE_SIZE[0]) / 2, float(TABLE_SIZE[1]) / 2)
"""The table top as a range ``(x_min, y_min, x_max, y_max)`` in the table frame, m (the extent
:data:`TABLE_SIZE` about :data:`TABLE_ORIGIN`). Every range of a region on the table (or LIBERO
"floor", built as the same top) must lie inside it: ``sim.scene.build_scene`` refuses one that
does not, since whatever is placed there would drop to the ground plane."""
MAX_REGION_COORD_M = 10.0
"""Largest magnitude of any region range value a task file may hold, m (the table is 1.2 m
across). Non-finite or larger values (a typo, ``1e300``) are refused by ``sim.scene.build_scene``
before MuJoCo sees them."""
MAX_REGION_YAW_RAD = 2 * float(np.pi)
"""Largest magnitude of a region's ``:yaw_rotation`` bound, rad (a full turn either way)."""
