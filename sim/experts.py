"""Scripted experts: one closed-loop, state-feedback controller per skill verb.

Each expert implements :class:`robot_skills.execution.interfaces.SkillPolicy`: ``reset(args,
world)`` binds the call's entities, ``act(obs)`` returns an end-effector delta action (base frame)
that the shared differential-IK controller executes. The experts read privileged simulator
geometry (object sizes, handle and knob sites, drawer travel) from ``world``; their *decisions*
depend on quantities a learned policy also sees (argument poses relative to the end-effector,
gripper opening), so behaviour cloning can imitate them. Demonstrations add DART-style noise
(Laskey et al., 2017) on top — see :class:`DartNoise` — so learners see the expert's recoveries.

Every expert is a small state machine whose phase is re-derived from the observation at each step
(a latch only remembers that the grasp was closed or released), so a perturbed or noisy state is
corrected rather than replayed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from robot_skills.robot import GRIPPER_CLOSE, GRIPPER_OPEN, Action, Observation

MAX_STEP = 0.02
"""Largest commanded end-effector translation per control step, m (0.4 m/s at 20 Hz)."""
MAX_ROT_STEP = 0.08
"""Largest commanded end-effector rotation per control step, rad."""
POS_GAIN = 0.6
"""Fraction of the remaining position error commanded per step (proportional control)."""
ROT_GAIN = 0.5
HOVER = 0.10
"""Height above a grasp point at which the gripper lines up before descending, m."""
XY_TOL = 0.008
"""Horizontal alignment needed before descending onto a grasp or release point, m."""
Z_TOL = 0.008
"""Vertical tolerance of a grasp/release height, m."""
PALM_CLEAR = 0.03
"""Lowest the tool centre point may go below an object's top in a top-down grasp, m: the palm
(hand body) sits 0.047 m above the tool centre point, so this keeps it 17 mm clear of the top
(the descent may overshoot by up to Z_TOL, and a palm pressing on a bottle's top pops it out of
the fingers)."""
FINGERTIP_BELOW_TCP = 0.0085
"""How far the fingertips reach beyond the tool centre point along the gripper's +z, m."""
CLOSE_STEPS = 6
"""Control steps the gripper is given to close before lifting (0.3 s)."""


# ------------------------------------------------------------------------------------------
# geometry helpers


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    m = np.empty(9)
    mujoco.mju_quat2Mat(m, np.asarray(q, dtype=np.float64))
    return m.reshape(3, 3)


def _rotvec_of(R: np.ndarray) -> np.ndarray:
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, R.reshape(-1))
    if q[0] < 0:
        q = -q
    v = np.empty(3)
    mujoco.mju_quat2Vel(v, q, 1.0)
    return v


def _yaw(q: np.ndarray) -> float:
    w, x, y, z = (float(v) for v in q)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v if n <= limit else v * (limit / n)


def _gripper_frame(approach: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Rotation whose +z is ``approach`` (out of the gripper) and +y is the finger closing axis."""
    z = approach / np.linalg.norm(approach)
    y = closing - z * float(closing @ z)
    y /= np.linalg.norm(y)
    return np.column_stack([np.cross(y, z), y, z])


def _down_frame(closing_xy: np.ndarray, current: np.ndarray,
                at_xy: np.ndarray | None = None) -> np.ndarray:
    """Top-down gripper frame closing along ``closing_xy``, choosing the sign nearest ``current``.

    The fingers are symmetric, so closing along ``d`` or ``-d`` is the same grasp; picking the one
    nearer the current finger axis avoids needless half turns of the wrist. When the current finger
    axis is no guide (nearly perpendicular to ``d``, or the hand is pitched, e.g. just after a
    drawer) and ``at_xy`` (where the grasp is, base frame) is given, the sign nearer the wrist's
    neutral yaw at that azimuth is taken instead: the home posture closes along -y, rotated with
    the base joint. Choosing the other sign there can wind the last joint into its limit.
    """
    d = np.array([closing_xy[0], closing_xy[1], 0.0])
    d /= max(float(np.linalg.norm(d)), 1e-9)
    cur = np.array([current[0, 1], current[1, 1], 0.0])
    along = float(d @ cur)
    tilted = float(current[2, 2]) > -0.9
    if at_xy is not None and (tilted or abs(along) < 0.5 * max(float(np.linalg.norm(cur)), 1e-9)):
        a = math.atan2(float(at_xy[1]), float(at_xy[0]))
        ref = np.array([math.sin(a), -math.cos(a), 0.0])
        if float(d @ ref) < 0:
            d = -d
    elif along < 0:
        d = -d
    return _gripper_frame(np.array([0.0, 0.0, -1.0]), d)


class _Expert:
    """Shared machinery: motion toward a target pose with clipped proportional control."""

    name = ""

    def reset(self, args: Sequence[str], world) -> None:
        """Bind the call's ``args`` (entity names) and the simulated ``world`` (a
        :class:`sim.world.SimTaskWorld`: its ``model``, ``data`` and ``scene`` are read)."""
        self.args = tuple(args)
        self.world = world
        self.closed_steps = 0
        self.released = False
        self.grasped = False
        if hasattr(self, "_backout_from"):
            del self._backout_from
        self._bind()

    def _bind(self) -> None:  # pragma: no cover - overridden
        pass

    BACKOUT = 0.08
    """Distance to back out along the tool axis when a skill starts with a tilted hand, m."""
    BACKOUT_RISE = 0.08
    """Height to rise after backing out, before moving sideways, m."""

    def _backout(self, obs: Observation) -> Action | None:
        """Back out along the tool axis when the hand starts tilted (e.g. still at a handle).

        A skill that ends at a handle or knob (open/close) leaves the fingers around it; the only
        clear way out is back along the gripper's own +z axis, with the jaw half open, before the
        hand re-orients or moves sideways. Returns None once backed out (or if not needed).
        """
        R = _quat_to_mat(obs.ee_quat)
        if not hasattr(self, "_backout_from"):
            tilted = float(R[2, 2]) > -0.95          # tool axis not pointing straight down
            self._backout_from = obs.ee_pos.copy() if tilted else None
            self._backout_R = R
        if self._backout_from is None:
            return None
        goal = self._backout_from - self.BACKOUT * self._backout_R[:, 2]
        if float(np.linalg.norm(obs.ee_pos - self._backout_from)) >= self.BACKOUT - 0.01:
            # then rise before any sideways move, so the hand sweeps above the drawer it opened
            # (an open drawer's front stands where the hand backed out to)
            rise_z = goal[2] + self.BACKOUT_RISE
            if obs.ee_pos[2] < rise_z - 0.01:
                return self._action(obs, np.array([obs.ee_pos[0], obs.ee_pos[1], rise_z]),
                                    self._backout_R, GRIPPER_OPEN)
            self._backout_from = None
            return None
        # open the jaw wide before sliding off: a half-open jaw can stay hooked on a handle bar
        # and drag the drawer along
        if obs.gripper_width < 0.06 and float(np.linalg.norm(obs.ee_pos - self._backout_from)) < 0.01:
            return self._action(obs, self._backout_from, self._backout_R, GRIPPER_OPEN)
        return self._action(obs, goal, self._backout_R, GRIPPER_OPEN, max_step=0.015)

    # -- privileged geometry -------------------------------------------------------------
    def _site_pos(self, site: str) -> np.ndarray:
        return self.world.data.site_xpos[self.world.model.site(site).id].copy()

    def _site_mat(self, site: str) -> np.ndarray:
        return self.world.data.site_xmat[self.world.model.site(site).id].reshape(3, 3).copy()

    def _object_half(self, name: str) -> np.ndarray:
        return np.asarray(self.world.scene.objects[name].half_extents, dtype=np.float64)

    def _top_z(self, obs: Observation, name: str) -> float:
        """Height of the surface something would rest on for entity ``name`` (base frame, m)."""
        pose = obs.object_poses[name]
        if name in self.world.scene.objects:
            return float(pose[2] + self._object_half(name)[2])
        return float(pose[2])  # region sites lie on their region's floor

    # -- commands ---------------------------------------------------------------------------
    def _action(self, obs: Observation, pos_target: np.ndarray, R_target: np.ndarray,
                gripper: float, max_step: float = MAX_STEP) -> Action:
        dp = _clip_norm(POS_GAIN * (np.asarray(pos_target) - obs.ee_pos), max_step)
        R = _quat_to_mat(obs.ee_quat)
        dr = _clip_norm(ROT_GAIN * _rotvec_of(R_target @ R.T), MAX_ROT_STEP)
        return Action(delta_pos=dp, delta_rot=dr, gripper=float(gripper))

    def _rot_err(self, obs: Observation, R_target: np.ndarray) -> float:
        R = _quat_to_mat(obs.ee_quat)
        return float(np.linalg.norm(_rotvec_of(R_target @ R.T)))

    def _descend_and_close(self, obs: Observation, g: np.ndarray, R: np.ndarray) -> Action:
        """Line up above the grasp point ``g`` (base frame, m), descend onto it with the jaw open,
        then start closing (sets :attr:`grasped`)."""
        move = self._travel(obs, g, g[2] + HOVER, R, GRIPPER_OPEN)
        if move is not None:
            return move
        if abs(obs.ee_pos[2] - g[2]) > Z_TOL:
            return self._action(obs, g, R, GRIPPER_OPEN)
        self.grasped = True
        return self._action(obs, g, R, GRIPPER_CLOSE)

    def _travel(self, obs: Observation, goal: np.ndarray, safe_z: float, R: np.ndarray,
                gripper: float, xy_tol: float = XY_TOL) -> Action | None:
        """Go up to ``safe_z``, across, then return None once above ``goal`` (xy within tol).

        Lifts before moving sideways and moves sideways before descending, so the carried object
        and the hand clear everything on the table.
        """
        ee = obs.ee_pos
        step = getattr(self, "carry_step", MAX_STEP)
        xy_err = float(np.linalg.norm(goal[:2] - ee[:2]))
        if xy_err <= xy_tol and self._rot_err(obs, R) < 0.1:
            return None
        if ee[2] < safe_z - 0.03 and xy_err > 0.03:
            return self._action(obs, np.array([ee[0], ee[1], safe_z]), R, gripper, max_step=step)
        # descend no faster than the horizontal distance shrinks (a 45-degree funnel above the
        # goal), so a hand starting high does not sweep down through what lies in between
        z = max(safe_z, goal[2], min(float(ee[2]), safe_z + xy_err))
        return self._action(obs, np.array([goal[0], goal[1], z]), R, gripper, max_step=step)


# ------------------------------------------------------------------------------------------
# pick


class PickExpert(_Expert):
    """``pick(obj)``: line up above the grasp point, descend, close, lift.

    The grasp point is the object's centre in x/y at ``GraspInfo.grasp_height`` above its bottom;
    the fingers close along the object's grasp axis (any axis for round objects: the world y axis).
    """

    name = "pick"
    LIFT = 0.12

    def _bind(self) -> None:
        self.obj = self.args[0]
        self.lift_z: float | None = None
        self._round_axis: np.ndarray | None = None
        info = self.world.scene.objects[self.obj]
        self.grasp = info.grasp
        self.half = np.asarray(info.half_extents, dtype=np.float64)

    def _closing_axis(self, obs: Observation) -> np.ndarray:
        yaw = _yaw(obs.object_poses[self.obj][3:7])
        axis = self.grasp.axis if self.grasp is not None else "any"
        if axis == "x":
            return np.array([math.cos(yaw), math.sin(yaw)])
        if axis == "y":
            return np.array([-math.sin(yaw), math.cos(yaw)])
        if self._round_axis is None:
            d = self._clearest_axis(obs)
            period = self.grasp.facet_period if self.grasp is not None else 0.0
            if period > 0:  # close on two opposite flats, not on corners
                ang = yaw + period * round((math.atan2(d[1], d[0]) - yaw) / period)
                d = np.array([math.cos(ang), math.sin(ang)])
            self._round_axis = d
        return self._round_axis

    # hand + open fingers seen from above: half length along the closing axis and half width
    _HAND_HALF = (0.10, 0.028)

    def _clearest_axis(self, obs: Observation) -> np.ndarray:
        """For a round object: the closing axis (among 4 yaws) whose hand footprint stays
        clearest of the neighbouring objects; world y unless a neighbour is in the way."""
        p = np.asarray(obs.object_poses[self.obj][:2])
        others = []
        for name, info in self.world.scene.objects.items():
            if name == self.obj or name not in obs.object_poses:
                continue
            q = np.asarray(obs.object_poses[name][:3])
            top = q[2] + info.half_extents[2]
            if top < obs.object_poses[self.obj][2] - self.half[2] + 0.03:
                continue  # flat things (plates) the fingers pass over
            if np.linalg.norm(q[:2] - p) < 0.25:
                others.append((q[:2] - p, float(max(info.half_extents[0], info.half_extents[1]))))
        best, best_clear = np.array([0.0, 1.0]), -np.inf
        for ang in (math.pi / 2, 0.0, math.pi / 4, -math.pi / 4):
            d = np.array([math.cos(ang), math.sin(ang)])
            n = np.array([-d[1], d[0]])
            clear = np.inf
            for rel, r in others:
                a, b = abs(float(rel @ d)), abs(float(rel @ n))
                dx, dy = max(a - self._HAND_HALF[0], 0.0), max(b - self._HAND_HALF[1], 0.0)
                clear = min(clear, math.hypot(dx, dy) - r)
            if clear > 0.01:
                return d
            if clear > best_clear:
                best, best_clear = d, clear
        return best

    def act(self, obs: Observation) -> Action:
        back = None if self.grasped else self._backout(obs)
        if back is not None:
            return back
        pose = obs.object_poses[self.obj]
        R = _down_frame(self._closing_axis(obs), _quat_to_mat(obs.ee_quat), pose[:2])
        bottom = pose[2] - self.half[2]
        gh = self.grasp.grasp_height if self.grasp is not None else self.half[2]
        # the palm sits PALM_CLEAR above the tool centre point: on a tall object (a bottle) the
        # fingers can only reach that far below its top, so grasp there (the neck)
        gz = max(min(gh, 2 * self.half[2] - 0.012), 2 * self.half[2] - PALM_CLEAR)
        g = np.array([pose[0], pose[1], bottom + gz])
        if self.grasped:
            self.closed_steps += 1
            if self.closed_steps < CLOSE_STEPS:
                return self._action(obs, g, R, GRIPPER_CLOSE)
            if self.lift_z is None:
                self.lift_z = float(obs.ee_pos[2]) + self.LIFT
            return self._action(obs, np.array([obs.ee_pos[0], obs.ee_pos[1], self.lift_z]), R,
                                GRIPPER_CLOSE)
        return self._descend_and_close(obs, g, R)


# ------------------------------------------------------------------------------------------
# place_on / place_in


class PlaceExpert(_Expert):
    """``place_on(obj, target)`` / ``place_in(obj, target)``: carry the held object above the
    target, lower it until its bottom is just above the target surface, release, back off."""

    name = "place_on"
    CLEARANCE = 0.012
    TRAVEL_MARGIN = 0.06
    START_LIFT = 0.06
    LOST = 0.12
    """Object-to-hand distance beyond which the object counts as dropped, m."""

    def __init__(self, name: str = "place_on") -> None:
        self.name = name

    def _bind(self) -> None:
        self.obj, self.target = self.args[0], self.args[1]
        self.half = self._object_half(self.obj)
        region = self.world.scene.regions.get(self.target)
        self.drawer = region is not None and region.kind == "drawer"
        # region sites are boxes whose half height covers the drawer's walls (see sim.assets)
        self._wall_height = (2.0 * float(self.world.model.site(region.site).size[2])
                             if self.drawer else 0.0)
        self._closing: np.ndarray | None = None
        self._start_z: float | None = None

    def _goal_xy_z(self, obs: Observation) -> tuple[np.ndarray, float]:
        pose = obs.object_poses[self.target]
        p = np.array(pose[:3], dtype=np.float64)
        if self.drawer:
            # aim at the part of the drawer that sticks out of the carcass (toward the robot)
            fwd = _quat_to_mat(pose[3:7])[:, 0]
            p = p + 0.03 * fwd
        top = self._top_z(obs, self.target)
        if self.target in self.world.scene.objects:
            other = self.world.scene.objects[self.target]
            if "container" in other.tags:  # e.g. a bowl: release just above its rim
                top = float(pose[2] + other.half_extents[2])
        return p, top

    def act(self, obs: Observation) -> Action:
        if self._closing is None:
            # keep the finger axis the grasp was made with
            self._closing = _quat_to_mat(obs.ee_quat)[:2, 1].copy()
        R = _down_frame(self._closing, _quat_to_mat(obs.ee_quat))
        goal, top = self._goal_xy_z(obs)
        obj = obs.object_poses[self.obj]
        offset = obj[:3] - obs.ee_pos          # held object relative to the hand
        if not self.released and float(np.linalg.norm(offset)) > self.LOST:
            # the object slipped out of the hand: hold still and let the executor's time limit
            # hand control back to the planner (chasing the offset would climb out of reach)
            return self._action(obs, obs.ee_pos, R, GRIPPER_OPEN)
        height = 2 * self.half[2]
        # carried object's bottom this far above the target's top while travelling; a raised
        # target (a cabinet top) is the tallest thing around, and a tall object held high above
        # it would take the hand beyond the arm's reach, so less margin there
        margin = self.TRAVEL_MARGIN + 0.02 - float(np.clip((top - 0.12) / 0.1, 0.0, 1.0)) * 0.045
        # a drawer's walls and front panel stand above its floor: clear them, not the floor
        clear = top + self._wall_height
        safe_z = max(clear, 0.05) + height + margin - offset[2] - self.half[2]
        safe_z = max(safe_z, clear + 0.05)
        if self._start_z is None:
            self._start_z = float(obs.ee_pos[2])
        # first lift the object clear of whatever it was taken from (a drawer, a box top): pick
        # ends as soon as the object leaves its support
        safe_z = max(safe_z, self._start_z + self.START_LIFT)
        if self.released:
            return self._action(obs, np.array([obs.ee_pos[0], obs.ee_pos[1], safe_z]), R,
                                GRIPPER_OPEN)
        ee_goal = np.array([goal[0] - offset[0], goal[1] - offset[1], safe_z])
        move = self._travel(obs, ee_goal, safe_z, R, GRIPPER_CLOSE)
        if move is not None:
            return move
        release_ee_z = obs.ee_pos[2] + (top + self.CLEARANCE) - (obj[2] - self.half[2])
        if obs.ee_pos[2] - release_ee_z > Z_TOL:
            return self._action(obs, np.array([ee_goal[0], ee_goal[1], release_ee_z]), R,
                                GRIPPER_CLOSE, max_step=0.015)
        self.released = True
        return self._action(obs, obs.ee_pos, R, GRIPPER_OPEN)


# ------------------------------------------------------------------------------------------
# open / close a drawer


class DrawerExpert(_Expert):
    """``open(drawer)`` / ``close(drawer)`` with a pitched grasp of the handle bar.

    The gripper points down and into the cabinet, pitched by :attr:`PITCH` from the vertical,
    with the fingers (half open) closing across the bar in the vertical plane of the slide axis.
    The pitch keeps the hand body clear of the drawer front above the handle (and of the cabinet
    top for the top drawer), and keeps the arm in its natural forward-reaching posture. The hand
    comes in along its own approach axis, closes, drags the drawer along its slide axis to the goal
    opening, releases, and backs off along the approach axis.
    """

    PITCH = math.radians(45.0)
    OPEN_TARGET = 0.145
    CLOSE_TARGET = 0.0
    PRE = 0.07          # pre-grasp distance back along the approach axis, m
    LINE_TOL = 0.008    # distance from the approach line allowed while moving in, m
    GRIP_HALF_OPEN = 0.0  # gripper command while reaching the bar: 40 mm jaw opening

    def __init__(self, name: str = "open") -> None:
        self.name = name

    def _bind(self) -> None:
        self.region = self.args[0]
        info = self.world.scene.regions[self.region]
        self.joint = info.joint
        self.handle_site = f"{self.region}_handle"
        self.goal_q = self.OPEN_TARGET if self.name == "open" else self.CLOSE_TARGET

    def _drawer_q(self) -> float:
        j = self.world.model.joint(self.joint)
        return float(self.world.data.qpos[j.qposadr[0]])

    def act(self, obs: Observation) -> Action:
        pose = obs.object_poses[self.region]
        fwd = _quat_to_mat(pose[3:7])[:, 0]           # slide axis, out of the cabinet
        fwd = np.array([fwd[0], fwd[1], 0.0]) / np.linalg.norm(fwd[:2])
        approach = math.cos(self.PITCH) * np.array([0.0, 0.0, -1.0]) - math.sin(self.PITCH) * fwd
        R = _gripper_frame(approach, fwd)
        handle = self._site_pos(self.handle_site)
        ee = obs.ee_pos
        pre = handle - self.PRE * approach
        done = (self._drawer_q() >= self.goal_q - 0.005 if self.name == "open"
                else self._drawer_q() <= self.goal_q + 0.005)
        if self.released or (done and self.grasped and self.closed_steps >= CLOSE_STEPS):
            self.released = True
            return self._action(obs, ee - 0.05 * approach, R, self.GRIP_HALF_OPEN)
        if self.grasped:
            self.closed_steps += 1
            if self.closed_steps < CLOSE_STEPS:
                return self._action(obs, handle, R, GRIPPER_CLOSE)
            step = 1.0 if self.name == "open" else -1.0
            return self._action(obs, handle + step * 0.04 * fwd, R, GRIPPER_CLOSE,
                                max_step=0.012)
        rel = ee - handle
        depth = float(rel @ -approach)                 # distance back along the approach axis
        off_line = float(np.linalg.norm(rel + depth * approach))
        if self._rot_err(obs, R) > 0.12 or off_line > self.LINE_TOL:
            if depth < 0.03:
                # too close to line up safely: back off along the approach axis first
                return self._action(obs, ee - 0.04 * approach + np.array([0, 0, 0.01]), R,
                                    self.GRIP_HALF_OPEN)
            return self._action(obs, pre, R, self.GRIP_HALF_OPEN)
        if depth > 0.006:
            return self._action(obs, handle, R, self.GRIP_HALF_OPEN, max_step=0.015)
        self.grasped = True
        return self._action(obs, handle, R, GRIPPER_CLOSE)


# ------------------------------------------------------------------------------------------
# turn a stove knob


class KnobExpert(_Expert):
    """``turn_on(stove)`` / ``turn_off(stove)``: grasp the knob's bar top-down and twist it."""

    TWIST = 1.1  # rad beyond the current angle; the knob's range is [0, pi/2]

    def __init__(self, name: str = "turn_on") -> None:
        self.name = name

    def _bind(self) -> None:
        self.stove = self.args[0]
        fx = self.world.scene.fixtures[self.stove]
        self.site = fx.sites.get(f"{self.stove}_knob", f"{self.stove}_knob")
        self.joint = fx.joints["knob"]
        self.sign = 1.0 if self.name == "turn_on" else -1.0
        self.R_twist_goal: np.ndarray | None = None

    def _knob_q(self) -> float:
        j = self.world.model.joint(self.joint)
        return float(self.world.data.qpos[j.qposadr[0]])

    def act(self, obs: Observation) -> Action:
        back = None if self.grasped else self._backout(obs)
        if back is not None:
            return back
        knob = self._site_pos(self.site)
        bar = self._site_mat(self.site)[:2, 1]       # close across the bar's narrow side
        R = _down_frame(bar, _quat_to_mat(obs.ee_quat), knob[:2])
        g = knob - np.array([0.0, 0.0, 0.012])
        done = self._knob_q() > 0.95 if self.name == "turn_on" else self._knob_q() < 0.1
        if self.released or (done and self.grasped):
            self.released = True
            R_hold = _quat_to_mat(obs.ee_quat)
            return self._action(obs, g + np.array([0, 0, HOVER]), R_hold, GRIPPER_OPEN)
        if self.grasped:
            self.closed_steps += 1
            if self.closed_steps < CLOSE_STEPS:
                return self._action(obs, g, R, GRIPPER_CLOSE)
            if self.R_twist_goal is None:
                c, s = math.cos(self.sign * self.TWIST), math.sin(self.sign * self.TWIST)
                Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
                self.R_twist_goal = Rz @ _quat_to_mat(obs.ee_quat)
            return self._action(obs, g, self.R_twist_goal, GRIPPER_CLOSE)
        return self._descend_and_close(obs, g, R)


# ------------------------------------------------------------------------------------------
# push


class PushExpert(_Expert):
    """``push(obj, region)``: closed fingertips inside the object's rim, dragged toward the region.

    The pushed objects are plates: the closed fingertips go down inside the rim on the side
    facing the target and move toward the region centre, pushing the rim's inner face. Inside the
    rim the plate cannot slip sideways off the fingers, and the hand stays above the plate (clear
    of fixtures standing beside it). The push direction is re-derived each step from the object's
    current position, so drift is corrected continuously.
    """

    name = "push"
    RIM_IN = 0.5      # fingertips this fraction of the radius from the centre, toward the target
    TIP_BELOW_TOP = 0.006  # fingertips this far below the object's top while pushing, m
    HOVER_Z = 0.06    # height above the object's top to line up at, m

    def _bind(self) -> None:
        self.obj, self.target = self.args[0], self.args[1]
        half = self._object_half(self.obj)
        self.radius = float(min(half[0], half[1]))
        self.height = float(2 * half[2])

    def act(self, obs: Observation) -> Action:
        back = self._backout(obs)
        if back is not None:
            return back
        pose = np.asarray(obs.object_poses[self.obj])
        p = pose[:3]
        c = np.asarray(obs.object_poses[self.target][:3])
        v = c[:2] - p[:2]
        dist = float(np.linalg.norm(v))
        v = v / max(dist, 1e-6)
        R = _down_frame(np.array([-v[1], v[0]]), _quat_to_mat(obs.ee_quat), p[:2])
        top = float(p[2] + self.height / 2)
        push_z = top - self.TIP_BELOW_TOP + FINGERTIP_BELOW_TCP
        spot = p[:2] + v * self.RIM_IN * self.radius
        ee = obs.ee_pos
        inside = float(np.linalg.norm(ee[:2] - p[:2])) < 0.75 * self.radius
        if inside and ee[2] < push_z + 0.01:
            goal = np.array([*(ee[:2] + v * 0.05), push_z])
            # keep the fingertips near the rim on the target side while pushing
            lateral = (spot - ee[:2]) - v * float((spot - ee[:2]) @ v)
            goal[:2] += lateral
            return self._action(obs, goal, R, GRIPPER_CLOSE, max_step=0.012)
        hover_z = top + self.HOVER_Z
        if float(np.linalg.norm(ee[:2] - spot)) > 0.012:
            return self._travel(obs, np.array([spot[0], spot[1], hover_z]), hover_z, R,
                                GRIPPER_CLOSE, xy_tol=0.012) \
                or self._action(obs, np.array([spot[0], spot[1], hover_z]), R, GRIPPER_CLOSE)
        return self._action(obs, np.array([spot[0], spot[1], push_z]), R, GRIPPER_CLOSE,
                            max_step=0.015)


def make_expert(skill: str) -> _Expert:
    """A fresh scripted expert for ``skill`` (one of :data:`robot_skills.domain.verbs.SKILL_SPECS`).

    Raises:
        KeyError: for a verb with no expert.
    """
    makers = {
        "pick": PickExpert,
        "place_on": lambda: PlaceExpert("place_on"),
        "place_in": lambda: PlaceExpert("place_in"),
        "open": lambda: DrawerExpert("open"),
        "close": lambda: DrawerExpert("close"),
        "turn_on": lambda: KnobExpert("turn_on"),
        "turn_off": lambda: KnobExpert("turn_off"),
        "push": PushExpert,
    }
    if skill not in makers:
        raise KeyError(f"no scripted expert for skill {skill!r}; experts exist for {sorted(makers)}")
    return makers[skill]()


def expert_skills() -> dict[str, _Expert]:
    """One expert per verb, keyed by skill name (what the executor takes)."""
    return {name: make_expert(name) for name in
            ("pick", "place_on", "place_in", "open", "close", "turn_on", "turn_off", "push")}
