"""A Franka Emika Panda arm with its parallel-jaw hand, built procedurally with :class:`mujoco.MjSpec`.

Kinematics follow Franka's published Denavit-Hartenberg parameters (Craig's modified convention,
https://frankaemika.github.io/docs/control_parameters.html), written as the same chain of body
frames the official URDF (``franka_description``) and MuJoCo Menagerie's ``panda.xml`` use:

=====  ==================  =========================  ============================
link   offset from parent  frame rotation             joint limits (rad)
=====  ==================  =========================  ============================
1      (0, 0, 0.333)       --                         [-2.8973, 2.8973]
2      (0, 0, 0)           Rx(-90 deg)                [-1.7628, 1.7628]
3      (0, -0.316, 0)      Rx(+90 deg)                [-2.8973, 2.8973]
4      (0.0825, 0, 0)      Rx(+90 deg)                [-3.0718, -0.0698]
5      (-0.0825, 0.384, 0) Rx(-90 deg)                [-2.8973, 2.8973]
6      (0, 0, 0)           Rx(+90 deg)                [-0.0175, 3.7525]
7      (0.088, 0, 0)       Rx(+90 deg)                [-2.8973, 2.8973]
hand   (0, 0, 0.107)       Rz(-45 deg)  (flange)      fingers: 2 x [0, 0.04] m
=====  ==================  =========================  ============================

Velocity limits (rad/s): 2.175 for joints 1-4, 2.61 for joints 5-7; acceleration limits (rad/s^2):
15, 7.5, 10, 12.5, 15, 20, 20; torque limits (N m): 87 / 12 (same page, "Limits for Panda").
Link masses are the published identification values (rounded); inertias are rough diagonal
approximations. Geometry is capsules and boxes (no meshes). The links are gravity-compensated
(``body.gravcomp = 1``), as Franka's controller compensates gravity internally, so position targets
are tracked without sag.

The tool centre point site ``panda/tcp`` sits 0.1034 m beyond the flange (between the fingertip
pads); its +z axis points out of the gripper and its y axis is the fingers' opening direction.

Collision filtering: every robot geom has ``contype=2, conaffinity=1``; scene geoms keep MuJoCo's
default ``contype=conaffinity=1``. So the robot collides with the scene but never with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

CONTROL_HZ = 20.0
"""Control rate of the robot interface, Hz (LIBERO and robosuite use 20 Hz)."""
PHYSICS_TIMESTEP = 0.002
"""MuJoCo ``opt.timestep`` in s of a model built here; 25 substeps per 50 ms control step."""

PREFIX = "panda/"
N_ARM_JOINTS = 7

JOINT_LIMITS = np.array([
    [-2.8973, 2.8973],
    [-1.7628, 1.7628],
    [-2.8973, 2.8973],
    [-3.0718, -0.0698],
    [-2.8973, 2.8973],
    [-0.0175, 3.7525],
    [-2.8973, 2.8973],
])
"""``(7, 2)`` Franka's published joint position limits, rad."""
VELOCITY_LIMITS = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])
"""``(7,)`` Franka's published joint velocity limits, rad/s."""
TORQUE_LIMITS = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
"""``(7,)`` Franka's published joint torque limits, N m."""
ACCELERATION_LIMITS = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])
"""``(7,)`` Franka's published joint acceleration limits (``ddq_max``), rad/s^2."""
ROS_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
"""The arm joints' names in ``franka_description`` / franka_ros2 (``JointState``, trajectories)."""
HOME_QPOS = np.array([0.0, -0.35, 0.0, -2.35, 0.0, 2.0, 0.785])
"""``(7,)`` home joint configuration, rad: gripper pointing straight down, ~0.3 m above the table,
fingers opening along the base y axis (a lowered variant of Franka's ``[0, -pi/4, 0, -3pi/4, 0,
pi/2, pi/4]`` ready pose)."""
FINGER_MAX = 0.04
"""Travel of each finger, m (so the jaw opening is in ``[0, 0.08]`` m)."""
GRIPPER_MAX_WIDTH = 2 * FINGER_MAX
TCP_OFFSET = 0.1034
"""Distance from the flange (hand frame) to the tool centre point along the hand's +z, m."""

# Published link masses, kg (Franka identification values as in Menagerie's panda.xml, rounded).
_MASSES = [0.63, 4.97, 0.65, 3.23, 3.59, 1.23, 1.67, 0.74]
# Joint-space position servo gains (Menagerie's tuning for the Panda, N m/rad and N m s/rad).
_KP = np.array([4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0])
_KV = np.array([450.0, 450.0, 350.0, 350.0, 200.0, 200.0, 200.0])
_ARM_GRAY = (0.93, 0.93, 0.93, 1.0)
_DARK = (0.25, 0.25, 0.25, 1.0)


@dataclass(frozen=True)
class PandaNames:
    """Names of the Panda's elements inside a compiled model (all prefixed ``panda/``).

    Attributes:
        arm_joints: the 7 arm hinge joints, base to flange.
        finger_joints: the two finger slide joints (left, right), each in ``[0, 0.04]`` m.
        arm_actuators: the 7 joint position servos (ctrl = target angle, rad).
        gripper_actuator: the gripper position servo (ctrl = target jaw opening in ``[0, 0.08]`` m).
        tcp_site: tool centre point site between the fingertips (+z out of the gripper).
        base_body: the arm's base body (``link0``), whose frame is the robot base frame.
        hand_body: the hand (flange) body.
        left_finger_geoms / right_finger_geoms: every collision geom of each finger, pads included.
        key: name of the home keyframe (present only if the spec held no other degrees of freedom
            when :func:`add_panda` was called; otherwise set :data:`HOME_QPOS` yourself).
        camera_wrist: a camera on the hand looking along the gripper's +z.
    """

    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, str]
    arm_actuators: tuple[str, ...]
    gripper_actuator: str
    tcp_site: str
    base_body: str
    hand_body: str
    left_finger_geoms: tuple[str, ...]
    right_finger_geoms: tuple[str, ...]
    key: str
    camera_wrist: str
    all_bodies: tuple[str, ...]


def _quat_rx(deg: float) -> list[float]:
    a = np.deg2rad(deg) / 2
    return [float(np.cos(a)), float(np.sin(a)), 0.0, 0.0]


def _quat_rz(deg: float) -> list[float]:
    a = np.deg2rad(deg) / 2
    return [float(np.cos(a)), 0.0, 0.0, float(np.sin(a))]


def _robot_geom(body: mujoco.MjsBody, name: str, **kw) -> mujoco.MjsGeom:
    g = body.add_geom(name=name, contype=2, conaffinity=1, group=kw.pop("group", 0),
                      rgba=kw.pop("rgba", _ARM_GRAY), **kw)
    # Only the explicit <inertial> defines the link's mass.
    g.mass = 0.0
    g.density = 0.0
    return g


def _capsule(body, name, p0, p1, r, rgba=_ARM_GRAY):
    return _robot_geom(body, name, type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                       fromto=[*p0, *p1], size=[r, 0, 0], rgba=rgba)


def _box(body, name, pos, half, rgba=_ARM_GRAY, **kw):
    return _robot_geom(body, name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=list(pos),
                       size=list(half), rgba=rgba, **kw)


def _inertial(body, mass, ipos, radius):
    body.explicitinertial = True
    body.mass = mass
    body.ipos = list(ipos)
    i = 0.4 * mass * radius ** 2  # a solid sphere of the link's rough size
    body.inertia = [i, i, i]
    body.gravcomp = 1.0


def configure_options(spec: mujoco.MjSpec) -> None:
    """Set the physics options the Panda's control and grasping were tuned for.

    ``timestep = PHYSICS_TIMESTEP`` (2 ms, 25 substeps per 20 Hz control step), the ``implicitfast``
    integrator (position servos' damping integrated implicitly), elliptic friction cones with
    ``impratio = 3`` (stiffer tangential contact; 10 made grasped objects chatter and fly off), Newton solver.
    """
    spec.option.timestep = PHYSICS_TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 3.0
    spec.option.solver = mujoco.mjtSolver.mjSOL_NEWTON
    spec.option.iterations = 50
    spec.option.ls_iterations = 20


def substeps_per_control() -> int:
    """Physics steps per control period: ``round(1 / (CONTROL_HZ * PHYSICS_TIMESTEP))`` (= 25)."""
    return round(1.0 / (CONTROL_HZ * PHYSICS_TIMESTEP))


def add_panda(spec: mujoco.MjSpec, base_pos=(0.0, 0.0, 0.0), *, set_options: bool = True,
              add_keyframe: bool | None = None, prefix: str = PREFIX,
              joint_limits: np.ndarray | None = None) -> PandaNames:
    """Add a Franka Panda with its hand to ``spec``'s world body.

    Args:
        spec: the spec to extend (modified in place). May already hold a scene.
        base_pos: ``(3,)`` position of ``link0`` (the robot base frame) in the world frame, m.
        set_options: also apply :func:`configure_options` (timestep, integrator, contact cone).
        add_keyframe: add a ``panda/home`` keyframe (arm at :data:`HOME_QPOS`, gripper open).
            Default: only when the spec has no other joints yet (a keyframe must cover every qpos).
        prefix: element name prefix (default ``panda/``; the FR3 description uses ``fr3/``).
        joint_limits: ``(7, 2)`` joint (and servo) position ranges, rad (default
            :data:`JOINT_LIMITS`; the FR3, same kinematics, has its own).

    Returns:
        The :class:`PandaNames` of the added elements.

    Raises:
        ValueError: if ``base_pos`` is not 3 finite numbers or the spec already has a Panda.
    """
    base = np.asarray(base_pos, dtype=float).reshape(-1)
    if base.shape != (3,) or not np.all(np.isfinite(base)):
        raise ValueError(f"base_pos must be 3 finite numbers, got {base_pos!r}")
    lims = JOINT_LIMITS if joint_limits is None else np.asarray(joint_limits, dtype=float)
    if lims.shape != (N_ARM_JOINTS, 2) or not np.all(np.isfinite(lims)):
        raise ValueError(f"joint_limits must be (7, 2) finite numbers, got {joint_limits!r}")
    if spec.body(prefix + "link0") is not None:
        raise ValueError(f"this spec already holds a Panda (body '{prefix}link0' exists)")
    if add_keyframe is None:
        add_keyframe = len(spec.joints) == 0
    if set_options:
        configure_options(spec)

    # Joint ranges are read in the spec's angle unit (MjSpec defaults to degrees).
    ang = 180.0 / np.pi if spec.compiler.degree else 1.0
    P = prefix
    link0 = spec.worldbody.add_body(name=P + "link0", pos=base.tolist())
    _inertial(link0, _MASSES[0], (-0.04, 0, 0.05), 0.08)
    link0.gravcomp = 0.0
    _capsule(link0, P + "link0_c", (-0.04, 0, 0.03), (0, 0, 0.12), 0.07)

    # (pos, quat, geoms) per link, in the parent's frame (see the module docstring table).
    chain = [
        ((0, 0, 0.333), [1, 0, 0, 0]),
        ((0, 0, 0), _quat_rx(-90)),
        ((0, -0.316, 0), _quat_rx(90)),
        ((0.0825, 0, 0), _quat_rx(90)),
        ((-0.0825, 0.384, 0), _quat_rx(-90)),
        ((0, 0, 0), _quat_rx(90)),
        ((0.088, 0, 0), _quat_rx(90)),
    ]
    ipos = [(0, -0.04, -0.05), (0, -0.07, 0.03), (0.04, 0.03, -0.07), (-0.05, 0.1, 0.03),
            (0, 0.04, -0.1), (0.06, -0.01, -0.01), (0.01, 0.0, 0.06)]
    radii = [0.1, 0.08, 0.1, 0.1, 0.1, 0.06, 0.05]
    parent = link0
    links = [link0]
    joints = []
    for i, ((pos, quat), ip, r) in enumerate(zip(chain, ipos, radii), start=1):
        body = parent.add_body(name=f"{P}link{i}", pos=list(pos), quat=quat)
        _inertial(body, _MASSES[i], ip, r)
        j = body.add_joint(name=f"{P}joint{i}", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1],
                           range=(lims[i - 1] * ang).tolist(), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                           damping=1.0, armature=0.1, frictionloss=0.0)
        joints.append(j.name)
        links.append(body)
        parent = body
    l1, l2, l3, l4, l5, l6, l7 = links[1:]
    _capsule(l1, P + "link1_c", (0, 0, -0.19), (0, 0, -0.01), 0.065)
    _capsule(l2, P + "link2_c", (0, 0, -0.06), (0, -0.19, 0.0), 0.065)
    _capsule(l3, P + "link3_c", (0, 0, -0.16), (0, 0, -0.02), 0.06)
    _capsule(l3, P + "link3_elbow", (0.0825, 0, -0.07), (0.0825, 0, 0.0), 0.055)
    _capsule(l4, P + "link4_c", (0, 0, 0.0), (-0.0825, 0.1, 0), 0.055)
    _capsule(l5, P + "link5_c", (0, 0, -0.26), (0, 0, -0.02), 0.055)
    _capsule(l5, P + "link5_b", (0, 0.06, -0.25), (0, 0.02, -0.12), 0.04)
    _capsule(l6, P + "link6_c", (0, 0, -0.05), (0, 0, 0.01), 0.055)
    _capsule(l6, P + "link6_b", (0, 0, 0), (0.088, 0, 0), 0.045)
    _capsule(l7, P + "link7_c", (0, 0, -0.02), (0, 0, 0.08), 0.045, rgba=_DARK)

    hand = l7.add_body(name=P + "hand", pos=[0, 0, 0.107], quat=_quat_rz(-45))
    _inertial(hand, 0.73, (-0.01, 0, 0.03), 0.06)
    _capsule(hand, P + "hand_flange", (0, 0, 0.0), (0, 0, 0.012), 0.04, rgba=_DARK)
    _box(hand, P + "hand_c", (0, 0, 0.034), (0.022, 0.095, 0.022))
    hand.add_site(name=P + "tcp", pos=[0, 0, TCP_OFFSET], size=[0.005, 0, 0],
                  rgba=[1, 0, 0, 0.5], group=5)
    hand.add_camera(name=P + "wrist_cam", pos=[0.06, 0, 0.02], quat=_quat_rz(-90),
                    fovy=75.0)
    # MuJoCo cameras look along -z; rotate so the wrist camera looks along the hand's +z.
    cam = spec.camera(P + "wrist_cam")
    cam.quat = [0.0, 0.7071068, 0.7071068, 0.0]

    finger_geoms = {}
    finger_joints = []
    for side, quat in (("left", [1, 0, 0, 0]), ("right", [0, 0, 0, 1])):
        f = hand.add_body(name=f"{P}{side}_finger", pos=[0, 0, 0.0584], quat=quat)
        _inertial(f, 0.015, (0, 0.01, 0.03), 0.02)
        j = f.add_joint(name=f"{P}finger_joint_{side}", type=mujoco.mjtJoint.mjJNT_SLIDE,
                        axis=[0, 1, 0], range=[0.0, FINGER_MAX],
                        limited=mujoco.mjtLimited.mjLIMITED_TRUE, damping=2.0, armature=0.05)
        finger_joints.append(j.name)
        body_g = _box(f, f"{P}{side}_finger_c", (0, 0.0135, 0.025), (0.0095, 0.0055, 0.027),
                      rgba=_DARK)
        # Fingertip pad: the inner face sits at y = 0, so the jaw opening is q_left + q_right.
        pad = _box(f, f"{P}{side}_pad", (0, 0.004, 0.043), (0.0095, 0.004, 0.0105),
                   rgba=(0.15, 0.15, 0.15, 1.0))
        pad.friction = [1.5, 0.02, 0.0001]
        pad.condim = 4
        pad.priority = 1
        pad.solref = [0.004, 1.0]
        pad.solimp = [0.99, 0.999, 0.0005, 0.5, 2.0]
        body_g.friction = [1.0, 0.005, 0.0001]
        finger_geoms[side] = (body_g.name, pad.name)

    # The two fingers move together (Franka's gripper is a single-DoF mechanism).
    spec.add_equality(name=P + "finger_coupling", type=mujoco.mjtEq.mjEQ_JOINT,
                      name1=finger_joints[0], name2=finger_joints[1],
                      data=[0, 1, 0, 0, 0] + [0] * 7, solref=[0.005, 1.0],
                      solimp=[0.95, 0.99, 0.001, 0.5, 2.0])
    ten = spec.add_tendon(name=P + "jaw_width")
    ten.wrap_joint(finger_joints[0], 1.0)
    ten.wrap_joint(finger_joints[1], 1.0)

    actuators = []
    for i, jn in enumerate(joints):
        a = spec.add_actuator(name=f"{P}act{i + 1}", target=jn,
                              trntype=mujoco.mjtTrn.mjTRN_JOINT)
        a.set_to_position(kp=float(_KP[i]), kv=float(_KV[i]))
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.ctrlrange = lims[i].tolist()
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-float(TORQUE_LIMITS[i]), float(TORQUE_LIMITS[i])]
        actuators.append(a.name)
    g = spec.add_actuator(name=P + "gripper", target=ten.name,
                          trntype=mujoco.mjtTrn.mjTRN_TENDON)
    # ~35 N per finger at the clamp; Franka's hand exerts 70 N continuous in total.
    g.set_to_position(kp=800.0, kv=20.0)
    g.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    g.ctrlrange = [0.0, GRIPPER_MAX_WIDTH]
    g.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    g.forcerange = [-70.0, 70.0]

    if add_keyframe:
        spec.add_key(name=P + "home", qpos=[*HOME_QPOS.tolist(), FINGER_MAX, FINGER_MAX],
                     ctrl=[*HOME_QPOS.tolist(), GRIPPER_MAX_WIDTH])

    return PandaNames(
        arm_joints=tuple(joints),
        finger_joints=(finger_joints[0], finger_joints[1]),
        arm_actuators=tuple(actuators),
        gripper_actuator=g.name,
        tcp_site=P + "tcp",
        base_body=link0.name,
        hand_body=hand.name,
        left_finger_geoms=finger_geoms["left"],
        right_finger_geoms=finger_geoms["right"],
        key=P + "home",
        camera_wrist=P + "wrist_cam",
        all_bodies=tuple(b.name for b in links) + (hand.name, P + "left_finger",
                                                    P + "right_finger"),
    )


def panda_only_spec(base_pos=(0.0, 0.0, 0.0)) -> tuple[mujoco.MjSpec, PandaNames]:
    """A spec holding only the Panda (no scene): the model the IK controller and the hardware use.

    Returns:
        ``(spec, names)``; compile with ``spec.compile()``.
    """
    spec = mujoco.MjSpec()
    spec.modelname = "panda"
    names = add_panda(spec, base_pos)
    return spec, names


def arm_description():
    """The Panda's :class:`~robot_skills.robots.description.ArmDescription` (registry name ``panda``).

    Its model is :func:`panda_only_spec`'s (arm + hand, joints ``panda/joint1..7``); on the wire
    the joints are ``panda_joint1..7`` (franka_description).
    """
    from robot_skills.robots.description import ArmDescription

    return ArmDescription(
        name="panda",
        joint_names=ROS_JOINT_NAMES,
        model_joint_names=tuple(f"{PREFIX}joint{i}" for i in range(1, 8)),
        joint_limits=JOINT_LIMITS,
        velocity_limits=VELOCITY_LIMITS,
        acceleration_limits=ACCELERATION_LIMITS,
        home_qpos=HOME_QPOS,
        tcp_site=PREFIX + "tcp",
        gripper_max_width=GRIPPER_MAX_WIDTH,
        base_frame="panda_link0",
        source="https://frankaemika.github.io/docs/control_parameters.html (Limits for Panda)",
        builder=lambda: panda_only_spec()[0].compile(),
    )
