"""Universal Robots UR5e, built procedurally from UR's published Denavit-Hartenberg parameters.

Sources:

* Kinematics: Universal Robots, "DH parameters for calculations of kinematics and dynamics"
  (https://www.universal-robots.com/articles/ur/application-installation/dh-parameters-for-calculations-of-kinematics-and-dynamics/),
  standard DH convention, ``T_i = Rz(theta_i) Tz(d_i) Tx(a_i) Rx(alpha_i)``:

  =====  =========  ========  ==========  ========
  joint  a (m)      d (m)     alpha       mass kg
  =====  =========  ========  ==========  ========
  1      0          0.1625    pi/2        3.761
  2      -0.425     0         0           8.058
  3      -0.3922    0         0           2.846
  4      0          0.1333    pi/2        1.37
  5      0          0.0997    -pi/2       1.3
  6      0          0.0996    0           0.365
  =====  =========  ========  ==========  ========

* Limits: the UR5e User Manual (e-Series, technical specifications: every joint +/-360 deg,
  180 deg/s) as encoded in Universal_Robots_ROS2_Description ``config/ur5e/joint_limits.yaml``
  (https://github.com/UniversalRobots/Universal_Robots_ROS2_Description), which also limits the
  elbow to +/-180 deg (the forearm cannot pass the upper arm beyond that) and gives 180 deg/s^2 as
  acceleration limit -- UR does not publish joint acceleration limits, so that conservative figure
  is used here too. Torque limits 150 N m (joints 1-3) and 28 N m (4-6).

Frames: the model's world frame is DH frame 0, i.e. the ROS ``base`` frame of ur_description (the
frame the UR controller reports tool poses in; ``base_link`` is rotated pi about z from it). The
flange is DH frame 6 (``tool0``). The ``ur5e/tcp`` site is :data:`TCP_OFFSET` beyond the flange
along its +z: an *approximate* tool centre point for a Robotiq 2F-85 gripper on its coupling --
calibrate it for your tool. On the wire the joints are ``shoulder_pan_joint`` ... ``wrist_3_joint``
(ur_robot_driver, ``scaled_joint_trajectory_controller``).

Home: ``[pi, -pi/2, pi/2, -pi/2, -pi/2, 0]`` puts the tool pointing straight down ~0.34 m above the
base, 0.49 m in front along +x (joint 1 at pi turns the arm to the base frame's +x side, the
project's "forward").
"""

from __future__ import annotations

import mujoco
import numpy as np

from robot_skills.robots.description import ArmDescription, DHRow, build_dh_arm_spec

PREFIX = "ur5e/"
DH = (
    DHRow(a=0.0, d=0.1625, alpha=np.pi / 2),
    DHRow(a=-0.425, d=0.0, alpha=0.0),
    DHRow(a=-0.3922, d=0.0, alpha=0.0),
    DHRow(a=0.0, d=0.1333, alpha=np.pi / 2),
    DHRow(a=0.0, d=0.0997, alpha=-np.pi / 2),
    DHRow(a=0.0, d=0.0996, alpha=0.0),
)
"""UR's published standard DH table of the UR5e."""
MASSES = (3.761, 8.058, 2.846, 1.37, 1.3, 0.365)
JOINT_LIMITS = np.array([[-2 * np.pi, 2 * np.pi]] * 2 + [[-np.pi, np.pi]] + [[-2 * np.pi, 2 * np.pi]] * 3)
"""``(6, 2)`` rad: +/-2 pi, elbow +/-pi."""
VELOCITY_LIMITS = np.full(6, np.pi)
"""``(6,)`` 180 deg/s, rad/s."""
ACCELERATION_LIMITS = np.full(6, np.pi)
"""``(6,)`` 180 deg/s^2 (ur_description's figure; UR publishes none), rad/s^2."""
TORQUE_LIMITS = np.array([150.0, 150.0, 150.0, 28.0, 28.0, 28.0])
HOME_QPOS = np.array([np.pi, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
TCP_OFFSET = 0.15
"""Flange-to-TCP distance along the flange's +z, m (approximate, Robotiq 2F-85)."""
GRIPPER_MAX_WIDTH = 0.085
"""Robotiq 2F-85 stroke, m."""
ROS_JOINT_NAMES = ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint",
                   "wrist_1_joint", "wrist_2_joint", "wrist_3_joint")


def ur5e_only_spec() -> mujoco.MjSpec:
    """A spec holding only the UR5e arm (joints ``ur5e/joint1..6``, site ``ur5e/tcp``)."""
    return build_dh_arm_spec(name="ur5e", prefix=PREFIX, rows=DH, convention="standard",
                             joint_limits=JOINT_LIMITS, torque_limits=TORQUE_LIMITS,
                             masses=MASSES, tcp_offset=TCP_OFFSET, radius=0.05,
                             home_qpos=HOME_QPOS)


def arm_description() -> ArmDescription:
    """The UR5e's :class:`ArmDescription` (registry name ``ur5e``)."""
    return ArmDescription(
        name="ur5e",
        joint_names=ROS_JOINT_NAMES,
        model_joint_names=tuple(f"{PREFIX}joint{i}" for i in range(1, 7)),
        joint_limits=JOINT_LIMITS,
        velocity_limits=VELOCITY_LIMITS,
        acceleration_limits=ACCELERATION_LIMITS,
        home_qpos=HOME_QPOS,
        tcp_site=PREFIX + "tcp",
        gripper_max_width=GRIPPER_MAX_WIDTH,
        base_frame="base",
        source="https://www.universal-robots.com/articles/ur/application-installation/"
               "dh-parameters-for-calculations-of-kinematics-and-dynamics/ ; "
               "UniversalRobots/Universal_Robots_ROS2_Description config/ur5e/joint_limits.yaml",
        builder=lambda: ur5e_only_spec().compile(),
    )
