"""Arm descriptions as data (:class:`ArmDescription`) and a procedural MjSpec builder for DH chains.

An :class:`ArmDescription` is everything the core needs to drive one arm model, in simulation or
through the ROS 2 bridge: the joint names on the wire (URDF / ros2_control names), the names of the
same joints in the arm-only MuJoCo model the shared IK uses, the published position / velocity /
acceleration limits, a home pose, the tool-centre-point site and the gripper's opening.
:func:`robot_skills.robots.get_arm` returns one by name.

:func:`build_dh_arm_spec` turns a Denavit-Hartenberg table (standard or Craig's modified
convention) into a chain of MjSpec bodies whose frames *are* the DH frames, each with a hinge about
its local z axis -- the same construction as :mod:`robot_skills.robots.panda`: capsules between
consecutive joint origins, rough link inertias, gravity compensation, joint position servos, and a
``tcp`` site on the flange's +z axis. Nothing is downloaded.

Conventions (``theta_i`` is the joint angle; all lengths in m, angles in rad):

* standard (distal) DH: ``T_i = Rz(theta_i) Tz(d_i) Tx(a_i) Rx(alpha_i)``; the flange is frame n.
* modified (proximal, Craig) DH: ``T_i = Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(theta_i) Tz(d_i)``; rows hold
  ``(a_{i-1}, d_i, alpha_{i-1})``; the flange is frame n.

Joint zero offsets are not supported (none of the arms described here needs one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np

_ARM_GRAY = (0.93, 0.93, 0.93, 1.0)
_DARK = (0.25, 0.25, 0.25, 1.0)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ArmDescription:
    """One arm model: names, published limits, home pose and its arm-only MuJoCo model.

    Attributes:
        name: registry name (``panda``, ``fr3``, ``ur5e``, ``xarm7``).
        joint_names: ``(n,)`` joint names as the robot's URDF / ros2_control / ``JointState`` use them.
        model_joint_names: ``(n,)`` names of the same joints in :meth:`build_model`'s model.
        joint_limits: ``(n, 2)`` position limits ``[lower, upper]``, rad.
        velocity_limits: ``(n,)`` joint speed limits, rad/s (> 0).
        acceleration_limits: ``(n,)`` joint acceleration limits, rad/s^2 (> 0).
        home_qpos: ``(n,)`` home configuration, rad (inside the limits).
        tcp_site: name of the tool-centre-point site in :meth:`build_model`'s model.
        gripper_max_width: the gripper's full opening, m.
        base_frame: the ROS tf frame the model's world frame corresponds to (object poses and the
            workspace box are expressed in it).
        source: where the published figures come from (URLs / documents).
        builder: zero-argument callable returning the compiled arm-only model.

    Arrays are stored read-only. Raises ``ValueError`` on inconsistent shapes or values.
    """

    name: str
    joint_names: tuple[str, ...]
    model_joint_names: tuple[str, ...]
    joint_limits: np.ndarray
    velocity_limits: np.ndarray
    acceleration_limits: np.ndarray
    home_qpos: np.ndarray
    tcp_site: str
    gripper_max_width: float
    base_frame: str
    source: str
    builder: Callable[[], mujoco.MjModel] = field(repr=False)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(self.model_joint_names) != n:
            raise ValueError(f"{self.name}: joint_names and model_joint_names must have the same "
                             f"non-zero length, got {self.joint_names}, {self.model_joint_names}")
        lim = _ro(self.joint_limits)
        checks = {
            "joint_limits": (lim, (n, 2)),
            "velocity_limits": (_ro(self.velocity_limits), (n,)),
            "acceleration_limits": (_ro(self.acceleration_limits), (n,)),
            "home_qpos": (_ro(self.home_qpos), (n,)),
        }
        for key, (arr, shape) in checks.items():
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(f"{self.name}: {key} must be {shape} finite numbers, got {arr!r}")
            object.__setattr__(self, key, arr)
        if np.any(lim[:, 0] >= lim[:, 1]):
            raise ValueError(f"{self.name}: joint_limits need lower < upper, got {lim!r}")
        if np.any(self.velocity_limits <= 0) or np.any(self.acceleration_limits <= 0):
            raise ValueError(f"{self.name}: velocity/acceleration limits must be > 0")
        if np.any(self.home_qpos < lim[:, 0]) or np.any(self.home_qpos > lim[:, 1]):
            raise ValueError(f"{self.name}: home_qpos {self.home_qpos} outside the joint limits")
        if not (np.isfinite(self.gripper_max_width) and self.gripper_max_width > 0):
            raise ValueError(f"{self.name}: gripper_max_width must be > 0 m")

    @property
    def n_joints(self) -> int:
        """Number of arm joints ``n``."""
        return len(self.joint_names)

    def build_model(self) -> mujoco.MjModel:
        """A freshly compiled arm-only model (for IK/FK); its joints are :attr:`model_joint_names`."""
        return self.builder()

    def tcp_position_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """A forward-kinematics function ``q (n,) rad -> tcp position (3,) m`` in the base frame.

        Builds one model and data; the returned callable is what
        :class:`robot_skills.control.safety.SafetyFilter` takes as ``forward_kinematics``. Not
        thread-safe (one ``MjData``); make one per thread.
        """
        model = self.build_model()
        data = mujoco.MjData(model)
        qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in self.model_joint_names])
        sid = model.site(self.tcp_site).id
        n = self.n_joints

        def fk(q: np.ndarray) -> np.ndarray:
            q = np.asarray(q, dtype=np.float64).reshape(-1)
            if q.shape != (n,):
                raise ValueError(f"expected {n} joint positions, got shape {q.shape}")
            data.qpos[qadr] = q
            mujoco.mj_kinematics(model, data)
            return data.site_xpos[sid].copy()

        return fk


# ---------------------------------------------------------------------------- DH -> MjSpec

@dataclass(frozen=True)
class DHRow:
    """One Denavit-Hartenberg row (m, m, rad). In the modified convention ``a`` and ``alpha`` are
    the *previous* axis' ``a_{i-1}``, ``alpha_{i-1}``."""

    a: float
    d: float
    alpha: float


def _quat_rx(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0])


def _rx(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def dh_body_frames(rows: Sequence[DHRow], convention: str
                   ) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """Placements of the joint bodies and of the flange for a DH table.

    Returns:
        ``(bodies, flange)``: ``bodies[i] = (pos (3,), quat (4,))`` of joint body ``i + 1`` in its
        parent (the base for ``i = 0``), its hinge being about its local z axis; ``flange`` is the
        flange frame's placement in the last joint body.

    Raises:
        ValueError: on an unknown convention or an empty table.
    """
    if not rows:
        raise ValueError("empty DH table")
    if convention == "standard":
        # Body i's frame is DH frame i-1 rotated by theta_i; its child sits at Tz(d)Tx(a)Rx(alpha).
        places = [(np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))]
        for r in rows:
            places.append((np.array([r.a, 0.0, r.d]), _quat_rx(r.alpha)))
        return places[:-1], places[-1]
    if convention == "modified":
        places = []
        for r in rows:
            places.append((np.array([r.a, 0.0, 0.0]) + _rx(r.alpha) @ np.array([0.0, 0.0, r.d]),
                           _quat_rx(r.alpha)))
        return places, (np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))
    raise ValueError(f"convention must be 'standard' or 'modified', got {convention!r}")


def _geom(body: mujoco.MjsBody, name: str, **kw) -> mujoco.MjsGeom:
    g = body.add_geom(name=name, contype=2, conaffinity=1, rgba=kw.pop("rgba", _ARM_GRAY), **kw)
    g.mass = 0.0  # only the explicit inertial defines the link's mass
    g.density = 0.0
    return g


def build_dh_arm_spec(*, name: str, prefix: str, rows: Sequence[DHRow], convention: str,
                      joint_limits: np.ndarray, torque_limits: np.ndarray, masses: Sequence[float],
                      tcp_offset: float, radius: float = 0.05,
                      home_qpos: np.ndarray | None = None) -> mujoco.MjSpec:
    """A spec holding one arm built from a DH table (see the module docstring).

    Elements (all prefixed): bodies ``link1..linkn`` (whose frames are the DH frames), hinges
    ``joint1..jointn`` with ``joint_limits``, a capsule from each joint origin to the next (a
    sphere where they coincide), site ``flange`` and site ``tcp`` at ``tcp_offset`` along the
    flange's +z, position servos ``act1..actn`` (ctrl = target angle, force-limited to
    ``torque_limits``), and keyframe ``home`` if ``home_qpos`` is given. Links are gravity
    compensated; inertias are rough (solid spheres); geometry only approximates the arm's shape.

    Args:
        name: model name.
        prefix: element name prefix, e.g. ``"ur5e/"``.
        rows / convention: the DH table (:func:`dh_body_frames`).
        joint_limits: ``(n, 2)`` rad. torque_limits: ``(n,)`` N m. masses: ``n`` link masses, kg.
        tcp_offset: tool centre point distance beyond the flange along its +z, m.
        radius: capsule radius, m.
        home_qpos: optional ``(n,)`` keyframe configuration.
    """
    n = len(rows)
    lim = np.asarray(joint_limits, dtype=float)
    tau = np.asarray(torque_limits, dtype=float)
    if lim.shape != (n, 2) or tau.shape != (n,) or len(masses) != n:
        raise ValueError("joint_limits, torque_limits and masses must match the DH table's length")
    bodies, (flange_pos, flange_quat) = dh_body_frames(rows, convention)
    spec = mujoco.MjSpec()
    spec.modelname = name
    spec.compiler.degree = False
    base = spec.worldbody.add_body(name=prefix + "base")
    _geom(base, prefix + "base_c", type=mujoco.mjtGeom.mjGEOM_CYLINDER, pos=[0, 0, 0.03],
          size=[radius * 1.4, 0.03, 0])
    parent = base
    links = []
    for i, (pos, quat) in enumerate(bodies, start=1):
        b = parent.add_body(name=f"{prefix}link{i}", pos=pos.tolist(), quat=quat.tolist())
        b.explicitinertial = True
        b.mass = float(masses[i - 1])
        inertia = 0.4 * b.mass * radius ** 2 * 4.0
        b.inertia = [inertia] * 3
        b.gravcomp = 1.0
        b.add_joint(name=f"{prefix}joint{i}", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1],
                    range=lim[i - 1].tolist(), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                    damping=1.0, armature=0.1)
        links.append(b)
        parent = b
    # A capsule from each joint origin to the next joint origin (in the body's frame).
    child_pos = [p for p, _ in bodies[1:]] + [flange_pos]
    for i, (b, cp) in enumerate(zip(links, child_pos), start=1):
        r = radius * (1.0 if i <= n // 2 + 1 else 0.8)
        if np.linalg.norm(cp) > 1e-6:
            _geom(b, f"{prefix}link{i}_c", type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                  fromto=[0.0, 0.0, 0.0, *cp.tolist()], size=[r, 0, 0])
        else:
            _geom(b, f"{prefix}link{i}_c", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[r, 0, 0])
    last = links[-1]
    # The flange and TCP are sites on the last link (at the flange's placement in it).
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, flange_quat)
    z = rot.reshape(3, 3)[:, 2]
    last.add_site(name=prefix + "flange", pos=flange_pos.tolist(), quat=flange_quat.tolist(),
                  size=[0.005, 0, 0], group=5)
    last.add_site(name=prefix + "tcp", pos=(flange_pos + tcp_offset * z).tolist(),
                  quat=flange_quat.tolist(), size=[0.005, 0, 0], rgba=[1, 0, 0, 0.5], group=5)
    if tcp_offset > 0:
        _geom(last, prefix + "tool_c", type=mujoco.mjtGeom.mjGEOM_CAPSULE,
              fromto=[*flange_pos.tolist(), *(flange_pos + 0.8 * tcp_offset * z).tolist()],
              size=[0.035, 0, 0], rgba=_DARK)
    for i in range(1, n + 1):
        a = spec.add_actuator(name=f"{prefix}act{i}", target=f"{prefix}joint{i}",
                              trntype=mujoco.mjtTrn.mjTRN_JOINT)
        kp = 20.0 * float(tau[i - 1])
        a.set_to_position(kp=kp, kv=0.1 * kp)
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.ctrlrange = lim[i - 1].tolist()
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-float(tau[i - 1]), float(tau[i - 1])]
    if home_qpos is not None:
        h = np.asarray(home_qpos, dtype=float).tolist()
        spec.add_key(name=prefix + "home", qpos=h, ctrl=h)
    return spec
