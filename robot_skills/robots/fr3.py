"""Franka Research 3 (FR3): the Panda's kinematics with its own published limits.

Source: Franka's "Robot and interface specifications", *Limits for Franka Research 3*
(https://frankaemika.github.io/docs/control_parameters.html#limits-for-franka-research-3; the same
figures are in libfranka's ``rate_limiting.h`` and franka_description's ``robots/fr3/joint_limits.yaml``).
The FR3 keeps the Panda's Denavit-Hartenberg parameters (Craig's convention, see
:mod:`robot_skills.robots.panda`), so its model is the Panda's chain and hand with these limits:

=====  =====================  ===========  ================
joint  position (rad)         vel (rad/s)  accel (rad/s^2)
=====  =====================  ===========  ================
1      [-2.7437,  2.7437]     2.62         10
2      [-1.7837,  1.7837]     2.62         10
3      [-2.9007,  2.9007]     2.62         10
4      [-3.0421, -0.1518]     2.62         10
5      [-2.8065,  2.8065]     5.26         10
6      [ 0.5445,  4.5169]     4.18         10
7      [-3.0159,  3.0159]     5.26         10
=====  =====================  ===========  ================

Torque limits 87 N m (joints 1-4) and 12 N m (5-7), as the Panda. Franka also publishes
position-dependent velocity limits for the FR3 (``computeUpperLimitsJointVelocity``); the table
gives their constant envelope, so a command within it may still be refused near a limit -- the
safety presets therefore use lower velocities. On the wire the joints are ``fr3_joint1..7``
(franka_ros2, ``fr3_arm_controller``); the base frame is ``fr3_link0``; the Franka Hand opens
0.08 m. The model's elements are prefixed ``fr3/``.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_skills.robots import panda
from robot_skills.robots.description import ArmDescription

PREFIX = "fr3/"
JOINT_LIMITS = np.array([
    [-2.7437, 2.7437],
    [-1.7837, 1.7837],
    [-2.9007, 2.9007],
    [-3.0421, -0.1518],
    [-2.8065, 2.8065],
    [0.5445, 4.5169],
    [-3.0159, 3.0159],
])
"""``(7, 2)`` published FR3 joint position limits, rad."""
VELOCITY_LIMITS = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
"""``(7,)`` published FR3 joint velocity limits (envelope), rad/s."""
ACCELERATION_LIMITS = np.full(7, 10.0)
"""``(7,)`` published FR3 joint acceleration limits, rad/s^2."""
HOME_QPOS = panda.HOME_QPOS.copy()
"""``(7,)`` home configuration (the Panda's; inside the FR3's limits), rad."""
ROS_JOINT_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))


def fr3_only_spec() -> tuple[mujoco.MjSpec, panda.PandaNames]:
    """A spec holding only the FR3 (the Panda chain and hand, FR3 limits, names ``fr3/...``)."""
    spec = mujoco.MjSpec()
    spec.modelname = "fr3"
    names = panda.add_panda(spec, prefix=PREFIX, joint_limits=JOINT_LIMITS)
    return spec, names


def arm_description() -> ArmDescription:
    """The FR3's :class:`ArmDescription` (registry name ``fr3``)."""
    return ArmDescription(
        name="fr3",
        joint_names=ROS_JOINT_NAMES,
        model_joint_names=tuple(f"{PREFIX}joint{i}" for i in range(1, 8)),
        joint_limits=JOINT_LIMITS,
        velocity_limits=VELOCITY_LIMITS,
        acceleration_limits=ACCELERATION_LIMITS,
        home_qpos=HOME_QPOS,
        tcp_site=PREFIX + "tcp",
        gripper_max_width=panda.GRIPPER_MAX_WIDTH,
        base_frame="fr3_link0",
        source="https://frankaemika.github.io/docs/control_parameters.html"
               "#limits-for-franka-research-3",
        builder=lambda: fr3_only_spec()[0].compile(),
    )
