"""UFactory xArm7, built procedurally from UFactory's published kinematic parameters.

Sources:

* Kinematics: UFactory, "Kinematic and Dynamic Parameters of UFACTORY xArm Series" (xArm user
  manual / https://help.ufactory.cc), the modified (Craig) DH table of the xArm7, identical to the
  joint origins of ``xarm_description/urdf/xarm7/xarm7.urdf.xacro`` in
  https://github.com/xArm-Developer/xarm_ros2. Rows are ``(a_{i-1}, d_i, alpha_{i-1})``,
  ``T_i = Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(theta_i) Tz(d_i)``:

  =====  ============  ========  =============  ========
  joint  a_{i-1} (m)   d_i (m)   alpha_{i-1}    mass kg
  =====  ============  ========  =============  ========
  1      0             0.267     0              0.426
  2      0             0         -pi/2          0.561
  3      0             0.293     pi/2           0.445
  4      0.0525        0         pi/2           0.524
  5      0.0775        0.3425    pi/2           0.186
  6      0             0         pi/2           0.313
  7      0.076         0.097     -pi/2          0.315
  =====  ============  ========  =============  ========

* Limits: the URDF's defaults (same file): joints 1/3/5/7 +/-2 pi; joint 2 [-2.059, 2.0944];
  joint 4 [-0.19198, 3.927]; joint 6 [-1.69297, pi] rad; 3.14 rad/s on every joint (the product
  specification's 180 deg/s); efforts 50, 50, 30, 30, 30, 20, 20 N m. UFactory publishes no joint
  acceleration limit (the URDF and ``config/xarm7/joint_limits.yaml`` set
  ``has_acceleration_limits: false``); :data:`ACCELERATION_LIMITS` is a conservative software
  value chosen here, not a vendor figure.

Frames: the model's world frame is ``link_base``; the flange is joint 7's frame (``link_eef``). The
``xarm7/tcp`` site is 0.172 m beyond the flange along +z, the tool centre point UFactory gives for
the xArm Gripper, whose stroke is 0-85 mm (``drive_joint`` 0-0.85). On the wire the joints are
``joint1`` ... ``joint7`` (xarm_ros2, ``xarm7_traj_controller``).

Home ``[0, -0.3, 0, 0.9, 0, 1.2, 0]``: tool pointing straight down, ~0.39 m in front of the base
and ~0.24 m above it.
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_skills.robots.description import ArmDescription, DHRow, build_dh_arm_spec

PREFIX = "xarm7/"
DH = (
    DHRow(a=0.0, d=0.267, alpha=0.0),
    DHRow(a=0.0, d=0.0, alpha=-np.pi / 2),
    DHRow(a=0.0, d=0.293, alpha=np.pi / 2),
    DHRow(a=0.0525, d=0.0, alpha=np.pi / 2),
    DHRow(a=0.0775, d=0.3425, alpha=np.pi / 2),
    DHRow(a=0.0, d=0.0, alpha=np.pi / 2),
    DHRow(a=0.076, d=0.097, alpha=-np.pi / 2),
)
"""UFactory's modified DH table of the xArm7."""
MASSES = (0.42603, 0.56095, 0.44463, 0.52387, 0.18554, 0.31344, 0.31468)
_TWO_PI = 2 * np.pi
JOINT_LIMITS = np.array([
    [-_TWO_PI, _TWO_PI],
    [-2.059, 2.0944],
    [-_TWO_PI, _TWO_PI],
    [-0.19198, 3.927],
    [-_TWO_PI, _TWO_PI],
    [-1.69297, np.pi],
    [-_TWO_PI, _TWO_PI],
])
"""``(7, 2)`` published xArm7 joint position limits, rad."""
VELOCITY_LIMITS = np.full(7, 3.14)
"""``(7,)`` rad/s."""
ACCELERATION_LIMITS = np.full(7, 10.0)
"""``(7,)`` rad/s^2 -- conservative, not published by UFactory (see the module docstring)."""
TORQUE_LIMITS = np.array([50.0, 50.0, 30.0, 30.0, 30.0, 20.0, 20.0])
HOME_QPOS = np.array([0.0, -0.3, 0.0, 0.9, 0.0, 1.2, 0.0])
TCP_OFFSET = 0.172
"""Flange-to-TCP distance of the xArm Gripper, m."""
GRIPPER_MAX_WIDTH = 0.085
ROS_JOINT_NAMES = tuple(f"joint{i}" for i in range(1, 8))


def xarm7_only_spec() -> mujoco.MjSpec:
    """A spec holding only the xArm7 arm (joints ``xarm7/joint1..7``, site ``xarm7/tcp``)."""
    return build_dh_arm_spec(name="xarm7", prefix=PREFIX, rows=DH, convention="modified",
                             joint_limits=JOINT_LIMITS, torque_limits=TORQUE_LIMITS,
                             masses=MASSES, tcp_offset=TCP_OFFSET, radius=0.045,
                             home_qpos=HOME_QPOS)


def arm_description() -> ArmDescription:
    """The xArm7's :class:`ArmDescription` (registry name ``xarm7``)."""
    return ArmDescription(
        name="xarm7",
        joint_names=ROS_JOINT_NAMES,
        model_joint_names=tuple(f"{PREFIX}joint{i}" for i in range(1, 8)),
        joint_limits=JOINT_LIMITS,
        velocity_limits=VELOCITY_LIMITS,
        acceleration_limits=ACCELERATION_LIMITS,
        home_qpos=HOME_QPOS,
        tcp_site=PREFIX + "tcp",
        gripper_max_width=GRIPPER_MAX_WIDTH,
        base_frame="link_base",
        source="UFactory 'Kinematic and Dynamic Parameters of UFACTORY xArm Series'; "
               "xArm-Developer/xarm_ros2 xarm_description/urdf/xarm7/xarm7.urdf.xacro",
        builder=lambda: xarm7_only_spec().compile(),
    )
