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

Experts for LIBERO-90 / LIBERO-10 (``docs/experts.md`` has the per-suite table): ``open`` /
``close`` dispatch to :class:`DrawerExpert` or :class:`DoorExpert` (the microwave's hinged door);
:class:`PlaceExpert` slides objects into regions reached from the front (a covered shelf level, the
microwave's cavity) and picks a free release point in a region; :class:`PickExpert` takes a pan by
its handle (or rim), a mug by its handle where it must enter the microwave, a book near one end
where it must enter a shelf. Travel heights clear every object and fixture near the path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from robot_skills.perception.placement import FRONT_ENTERED_KINDS, release_point
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
PALM_ABOVE_TCP = 0.047
"""Height of the palm (the hand body's underside) above the tool centre point, m."""
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


HANDLE_GRASP_WIDTH = 0.03
"""An object whose grasp info is narrower than this (m) and that has a ``"<name>_handle"`` site
(the frypan) is taken by that handle, at the site, instead of at its centre."""
SLIDE_KINDS = FRONT_ENTERED_KINDS
"""Region kinds reached from the front, not from above: a covered shelf level, the microwave's
cavity. The object is slid in with the hand kept outside (see :class:`PlaceExpert`)."""


def handle_grasp_site(world, obj: str) -> str | None:
    """The site ``"<obj>_handle"`` when the object is to be taken by its handle, else None.

    A handle is used when the object's grasp info is a thin bar (:data:`HANDLE_GRASP_WIDTH`, the
    frypan), or when the scene has a region reached from the front (:data:`SLIDE_KINDS`, the
    microwave): there a mug held by its body cannot go in without the hand, which does not fit
    under the roof, while a mug held by its handle leads with its body.
    """
    info = world.scene.objects.get(obj)
    site = f"{obj}_handle"
    if info is None or info.grasp is None:
        return None
    if mujoco.mj_name2id(world.model, mujoco.mjtObj.mjOBJ_SITE, site) < 0:
        return None
    if info.grasp.grasp_width < HANDLE_GRASP_WIDTH:
        return site
    if any(r.kind in SLIDE_KINDS and r.kind == "enclosure" for r in world.scene.regions.values()):
        return site
    return None


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
        if hasattr(self, "_let_go_from"):
            del self._let_go_from
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

    RELEASE_WIDTH = 0.07
    """Jaw opening below which a skill that starts with a top-down hand first lets go, m."""
    RELEASE_RISE = 0.05
    """Height the hand rises after letting go, before a skill that grips differently starts, m."""
    RELEASE_BELOW_Z = 0.30
    """A skill starting with a top-down hand lower than this (base frame, m) first lets go and
    rises: the hand may have just set something down."""

    def _let_go(self, obs: Observation) -> Action | None:
        """Open the jaw fully and rise, when a skill starts with a low top-down hand.

        A place ends as soon as the object rests in its target and the fingers lose contact,
        maybe before the jaw has opened; a skill that then closes the jaw part-way (a drawer's
        handle grasp) would pinch the object again and carry it off. Returns None once clear.
        """
        if not hasattr(self, "_let_go_from"):
            R = _quat_to_mat(obs.ee_quat)
            down = float(R[2, 2]) < -0.95
            low = float(obs.ee_pos[2]) < self.RELEASE_BELOW_Z
            self._let_go_from = obs.ee_pos.copy() if down and low else None
            self._let_go_R = R
            self._let_go_steps = 0
        if self._let_go_from is None:
            return None
        self._let_go_steps += 1
        start = self._let_go_from
        if obs.gripper_width < self.RELEASE_WIDTH and self._let_go_steps < CLOSE_STEPS + 4:
            return self._action(obs, start, self._let_go_R, GRIPPER_OPEN)
        if obs.ee_pos[2] < start[2] + self.RELEASE_RISE - 0.01 and self._let_go_steps < 40:
            return self._action(obs, start + np.array([0.0, 0.0, self.RELEASE_RISE]),
                                self._let_go_R, GRIPPER_OPEN)
        self._let_go_from = None
        return None

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

    def _descend_and_close(self, obs: Observation, g: np.ndarray, R: np.ndarray,
                           exclude: frozenset[str] = frozenset()) -> Action:
        """Line up above the grasp point ``g`` (base frame, m), descend onto it with the jaw open,
        then start closing (sets :attr:`grasped`). On the way the hand passes above everything
        but ``exclude`` (see :meth:`_travel`)."""
        move = self._travel(obs, g, g[2] + HOVER, R, GRIPPER_OPEN, exclude=exclude)
        if move is not None:
            return move
        if abs(obs.ee_pos[2] - g[2]) > Z_TOL:
            return self._action(obs, g, R, GRIPPER_OPEN)
        self.grasped = True
        return self._action(obs, g, R, GRIPPER_CLOSE)

    def _obstacle_top(self, obs: Observation, a_xy: np.ndarray, b_xy: np.ndarray,
                      radius: float, exclude: frozenset[str]) -> float:
        """Highest top (base-frame z, m) of the objects and fixtures whose footprint comes within
        ``radius`` (m) of the segment ``a_xy -> b_xy`` (what a hand of that half width sweeps).

        Objects are taken as their world-aligned bounding boxes (a toppled bottle counts lying
        down); fixtures as their yawed footprint boxes, except one whose footprint (grown by a
        drawer's travel) holds ``b_xy``: the skill works at that fixture (a drawer, a knob) and
        its own geometry is handled by the expert. ``-inf`` when nothing is near.
        """
        a, b = np.asarray(a_xy, float)[:2], np.asarray(b_xy, float)[:2]
        n = max(2, int(math.ceil(float(np.linalg.norm(b - a)) / 0.01)) + 1)
        pts = a[None, :] + np.linspace(0.0, 1.0, n)[:, None] * (b - a)[None, :]
        top = -math.inf
        scene = self.world.scene
        for name, info in scene.objects.items():
            if name in exclude or name not in obs.object_poses:
                continue
            pose = np.asarray(obs.object_poses[name], float)
            ext = np.abs(_quat_to_mat(pose[3:7])) @ np.asarray(info.half_extents, float)
            d = np.maximum(np.abs(pts - pose[:2]) - ext[:2], 0.0)
            if float(np.min(np.hypot(d[:, 0], d[:, 1]))) < radius:
                top = max(top, float(pose[2] + ext[2]))
        for name, fx in scene.fixtures.items():
            if name == scene.table or name in exclude:
                continue
            c, s = math.cos(fx.yaw), math.sin(fx.yaw)
            rot = np.array([[c, s], [-s, c]])           # world -> fixture frame (xy)
            half = np.asarray(fx.half_extents, float)
            loc_b = rot @ (b - fx.pos[:2])
            if np.all(np.abs(loc_b) <= half[:2] + self.FIXTURE_WORK_MARGIN):
                continue
            loc = (pts - fx.pos[:2]) @ rot.T
            d = np.maximum(np.abs(loc) - half[:2], 0.0)
            if float(np.min(np.hypot(d[:, 0], d[:, 1]))) < radius:
                top = max(top, float(fx.pos[2] + 2.0 * half[2]))
        return top

    FIXTURE_WORK_MARGIN = 0.17
    """A fixture whose footprint grown by this much (m, a drawer's travel) holds the travel goal is
    not an obstacle of that travel (the skill works at it)."""
    HAND_HALF_WIDTH = 0.06
    """Half width of the hand with open fingers seen from above, m (the swept corridor)."""
    OBSTACLE_CLEARANCE = 0.03
    """Height kept between the lowest point of the hand (or carried object) and an obstacle's
    top while moving sideways, m."""
    MAX_TRAVEL_Z = 0.45
    """Highest travel height (base frame, m): above it the arm leaves its comfortable workspace."""

    def _clear_z(self, obs: Observation, goal_xy: np.ndarray, below: float, radius: float,
                 exclude: frozenset[str]) -> float:
        """Lowest tool-centre height (base frame, m) at which moving from here to ``goal_xy``
        clears every obstacle on the way: ``below`` is how far the lowest carried point hangs
        under the tool centre point, ``radius`` the half width of what moves."""
        top = self._obstacle_top(obs, obs.ee_pos[:2], goal_xy, radius, exclude)
        if not math.isfinite(top):
            return -math.inf
        return min(top + below + self.OBSTACLE_CLEARANCE, self.MAX_TRAVEL_Z)

    def _travel(self, obs: Observation, goal: np.ndarray, safe_z: float, R: np.ndarray,
                gripper: float, xy_tol: float = XY_TOL,
                exclude: frozenset[str] | None = None, below: float = FINGERTIP_BELOW_TCP,
                radius: float | None = None) -> Action | None:
        """Go up to ``safe_z``, across, then return None once above ``goal`` (xy within tol).

        Lifts before moving sideways and moves sideways before descending, so the carried object
        and the hand clear everything on the table. When ``exclude`` is given (entities that are
        not obstacles: the carried object, the target), ``safe_z`` is raised so that the hand
        and what it carries (hanging ``below`` m under the tool centre point, ``radius`` m half
        width) pass above every object or fixture near the straight path to ``goal``.
        """
        ee = obs.ee_pos
        if exclude is not None:
            safe_z = max(safe_z, self._clear_z(obs, goal[:2], below,
                                               radius if radius is not None
                                               else self.HAND_HALF_WIDTH, exclude))
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
        self._tried_axes: list[np.ndarray] = []
        self._stall_min_z = math.inf
        self._stall_steps = 0
        self._box_axis: str | None = None
        self._rim_axis: np.ndarray | None = None
        info = self.world.scene.objects[self.obj]
        self.grasp = info.grasp
        self.half = np.asarray(info.half_extents, dtype=np.float64)
        self.handle_site = handle_grasp_site(self.world, self.obj)
        self.rim_grasp = False
        # a long upright box (a book) in a scene with a covered shelf is taken near one end, so
        # it can lead into the shelf with the fingers outside (see PlaceExpert._slide)
        self.end_grasp = (
            self.grasp is not None and self.grasp.axis in ("x", "y")
            and float(self.half[1] if self.grasp.axis == "x" else self.half[0])
            >= self.END_GRASP_MIN_HALF
            and 2 * float(self.half[2]) >= self.END_GRASP_MIN_HEIGHT
            and any(r.kind == "shelf" for r in self.world.scene.regions.values()))
        if (self.handle_site is not None
                and float(np.linalg.norm(self._site_pos(self.handle_site)[:2])) > self.HANDLE_REACH):
            self.handle_site = None
            # a pan can be taken by its rim instead; anything else by its body
            self.rim_grasp = self.grasp.grasp_width < HANDLE_GRASP_WIDTH

    HANDLE_GRASP_WIDTH = HANDLE_GRASP_WIDTH
    END_GRASP_OFFSET = 0.035
    """Distance of an end grasp from the object's centre along its long side, m."""
    END_GRASP_MIN_HALF = 0.05
    """Half length from which an upright box is taken near its end in a shelf scene, m."""
    END_GRASP_MIN_HEIGHT = 0.08
    """Height from which an upright box is taken near its end in a shelf scene, m."""
    HANDLE_REACH = 0.75
    """A handle farther than this from the arm's base (horizontally, m) is out of reach at table
    height; the object (a pan whose handle points away) is then taken by the near side of its
    rim, the fingers closing across the wall along the radial direction."""
    RIM_WALL = 0.005
    """Distance of the rim grasp point inside the object's outer radius, m (half a pan wall)."""

    MAX_GRASP_WIDTH = 0.072
    """Widest object side a top-down grasp may close across, m (the Panda opens 0.08 m; the rest
    is the alignment tolerance of the descent)."""

    def _closing_axis(self, obs: Observation) -> np.ndarray:
        yaw = _yaw(obs.object_poses[self.obj][3:7])
        axis = self.grasp.axis if self.grasp is not None else "any"
        if axis in ("x", "y"):
            if self._box_axis is None:
                self._box_axis = self._clearest_box_axis(obs, axis, yaw)
            axis = self._box_axis
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
    # open fingers alone (what reaches down to the grasp height)
    _FINGERS_HALF = (0.055, 0.015)

    def _neighbours(self, obs: Observation) -> list[tuple[np.ndarray, float, bool]]:
        """Objects around the one to pick that the hand could land on: ``(offset xy from it, m;
        footprint radius, m; tall)``; ``tall`` ones reach the hand body (above the palm), the
        others only the fingers. Flat things (plates) the fingers pass over are left out."""
        p = np.asarray(obs.object_poses[self.obj][:2])
        bottom = float(obs.object_poses[self.obj][2] - self.half[2])
        gh = self.grasp.grasp_height if self.grasp is not None else self.half[2]
        palm = bottom + gh + 0.04
        out = []
        for name, info in self.world.scene.objects.items():
            if name == self.obj or name not in obs.object_poses:
                continue
            q = np.asarray(obs.object_poses[name], float)
            ext = np.abs(_quat_to_mat(q[3:7])) @ np.asarray(info.half_extents, float)
            top = q[2] + ext[2]
            if top < bottom + 0.03:
                continue
            if np.linalg.norm(q[:2] - p) < 0.25:
                out.append((q[:2] - p, float(max(ext[0], ext[1])), bool(top > palm)))
        # fixture parts (an open drawer above, a cabinet's side) the hand could run into
        m, d = self.world.model, self.world.data
        for fname, fx in self.world.scene.fixtures.items():
            if fname == self.world.scene.table:
                continue
            for bname in fx.bodies:
                b = m.body(bname).id
                for g in range(int(m.body_geomadr[b]), int(m.body_geomadr[b] + m.body_geomnum[b])):
                    if m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0:
                        continue
                    R = d.geom_xmat[g].reshape(3, 3)
                    aabb = m.geom_aabb[g]
                    c = d.geom_xpos[g] + R @ aabb[:3]
                    h = np.abs(R) @ aabb[3:]
                    if c[2] + h[2] < bottom + 0.03 or c[2] - h[2] > palm + self.HAND_HEIGHT:
                        continue
                    # the part's footprint as a grid of small discs (1 cm apart), so its
                    # clearance is measured to its sides, not to a disc around it
                    nx = max(1, int(math.ceil(2 * h[0] / 0.01)))
                    ny = max(1, int(math.ceil(2 * h[1] / 0.01)))
                    xs = c[0] - h[0] + (np.arange(nx) + 0.5) * (2 * h[0] / nx)
                    ys = c[1] - h[1] + (np.arange(ny) + 0.5) * (2 * h[1] / ny)
                    tall = bool(c[2] + h[2] > palm)
                    for x in xs:
                        for y in ys:
                            q = np.array([x, y]) - p
                            if q @ q < 0.0625:
                                out.append((q, 0.006, tall))
        return out

    HAND_HEIGHT = 0.12
    """Height of the hand body above the palm, m (what an overhanging part can hit)."""

    def _axis_clearance(self, d: np.ndarray, others) -> float:
        """Smallest gap, m, between the hand's footprint closing along ``d`` and the neighbours."""
        n = np.array([-d[1], d[0]])
        clear = np.inf
        for rel, r, tall in others:
            hx, hy = self._HAND_HALF if tall else self._FINGERS_HALF
            a, b = abs(float(rel @ d)), abs(float(rel @ n))
            dx, dy = max(a - hx, 0.0), max(b - hy, 0.0)
            clear = min(clear, math.hypot(dx, dy) - r)
        return clear

    def _clearest_box_axis(self, obs: Observation, axis: str, yaw: float) -> str:
        """For a box: its grasp axis, or the other horizontal axis when that one is narrow
        enough (:attr:`MAX_GRASP_WIDTH`) and the hand closing along the grasp axis would land on
        a neighbour (a carton standing beside a butter pack) while the other would not."""
        other = "y" if axis == "x" else "x"
        width = 2.0 * float(self.half[0] if other == "x" else self.half[1])
        if width > self.MAX_GRASP_WIDTH:
            return axis
        others = self._neighbours(obs)
        if not others:
            return axis

        def vec(ax: str) -> np.ndarray:
            return (np.array([math.cos(yaw), math.sin(yaw)]) if ax == "x"
                    else np.array([-math.sin(yaw), math.cos(yaw)]))

        c_main, c_other = self._axis_clearance(vec(axis), others), self._axis_clearance(vec(other), others)
        return axis if c_main > 0.01 or c_main >= c_other else other

    def _clearest_axis(self, obs: Observation) -> np.ndarray:
        """For a round object: the closing axis (among 4 yaws) whose hand footprint stays
        clearest of the neighbouring objects; world y unless a neighbour is in the way."""
        others = self._neighbours(obs)
        best, best_clear = np.array([0.0, 1.0]), -np.inf
        for ang in (math.pi / 2, 0.0, math.pi / 4, -math.pi / 4):
            d = np.array([math.cos(ang), math.sin(ang)])
            clear = self._axis_clearance(d, others)
            if clear > 0.01:
                return d
            if clear > best_clear:
                best, best_clear = d, clear
        return best

    STALL_STEPS = 40
    """Steps the hand may hover just above a round object's grasp point without getting lower
    before the grasp turns to another closing axis (see :meth:`_unstall`)."""
    ROUND_AXES = (math.pi / 2, 0.0, math.pi / 4, -math.pi / 4)
    """Closing-axis yaws (rad, base frame) a round object is taken along."""

    def _unstall(self, obs: Observation, g: np.ndarray) -> None:
        """Turn a round object's grasp to another closing axis when the descent onto it stalls.

        The arm above the hand (link 6) can come down on the top of a tall neighbour (a wine
        bottle beside the bowl) that the hand's own footprint clears: the tool centre point then
        hovers a couple of centimetres above the grasp point for good. After
        :attr:`STALL_STEPS` steps near the grasp point without getting lower, the axis of
        :attr:`ROUND_AXES` farthest (modulo the jaw's half-turn symmetry) from every axis tried
        is taken; the hand rises to hover height while it turns (:meth:`_Expert._travel`).
        """
        if (self.grasped or self._round_axis is None or self.handle_site is not None
                or self.rim_grasp or self.end_grasp):
            return
        ee = np.asarray(obs.ee_pos, float)
        dz = float(ee[2] - g[2])
        if float(np.linalg.norm(ee[:2] - g[:2])) > 0.02 or not Z_TOL < dz < 0.05:
            return
        if ee[2] < self._stall_min_z - 0.003:
            self._stall_min_z, self._stall_steps = float(ee[2]), 0
            return
        self._stall_steps += 1
        if self._stall_steps < self.STALL_STEPS:
            return
        tried = [*self._tried_axes, self._round_axis]
        yaw = _yaw(obs.object_poses[self.obj][3:7])
        period = self.grasp.facet_period if self.grasp is not None else 0.0

        def snapped(a: float) -> np.ndarray:
            if period > 0:
                a = yaw + period * round((a - yaw) / period)
            return np.array([math.cos(a), math.sin(a)])

        def spread(d: np.ndarray) -> float:   # smallest angle to a tried axis, in [0, pi/2]
            return min(math.acos(min(1.0, abs(float(d @ t)))) for t in tried)

        best = max((snapped(a) for a in self.ROUND_AXES), key=spread)
        self._tried_axes = tried
        self._round_axis = best
        self._stall_min_z, self._stall_steps = math.inf, 0

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
        if self.handle_site is not None:
            g = self._site_pos(self.handle_site)
        elif self.end_grasp:
            # off-centre along the object's long side, at the end nearer the arm's base
            yaw = _yaw(pose[3:7])
            ax = self.grasp.axis
            long_dir = (np.array([-math.sin(yaw), math.cos(yaw)]) if ax == "x"
                        else np.array([math.cos(yaw), math.sin(yaw)]))
            if float(long_dir @ np.asarray(pose[:2])) > 0:
                long_dir = -long_dir
            g[:2] = np.asarray(pose[:2]) + self.END_GRASP_OFFSET * long_dir
        elif self.rim_grasp:
            u = np.array([pose[0], pose[1]]) / max(float(np.hypot(pose[0], pose[1])), 1e-9)
            r = float(min(self.half[0], self.half[1])) - self.RIM_WALL
            g = np.array([pose[0] - r * u[0], pose[1] - r * u[1],
                          bottom + 2 * self.half[2] - 0.012])
            if self._rim_axis is None:
                self._rim_axis = u
            R = _down_frame(self._rim_axis, _quat_to_mat(obs.ee_quat), g[:2])
        axis = self._round_axis
        self._unstall(obs, g)
        if self._round_axis is not axis:
            R = _down_frame(self._round_axis, _quat_to_mat(obs.ee_quat), pose[:2])
        if self.grasped:
            self.closed_steps += 1
            if self.closed_steps < CLOSE_STEPS:
                return self._action(obs, g, R, GRIPPER_CLOSE)
            if self.lift_z is None:
                self.lift_z = float(obs.ee_pos[2]) + self.LIFT
            return self._action(obs, np.array([obs.ee_pos[0], obs.ee_pos[1], self.lift_z]), R,
                                GRIPPER_CLOSE)
        return self._descend_and_close(obs, g, R, exclude=frozenset({self.obj}))


# ------------------------------------------------------------------------------------------
# place_on / place_in


class PlaceExpert(_Expert):
    """``place_on(obj, target)`` / ``place_in(obj, target)``: carry the held object above the
    target, lower it until its bottom is just above the target surface, release, back off.

    Into a region, the release point is a free spot (:meth:`_choose_spot`); over a drawer the
    fingers turn across it; into a narrow region the object turns to fit
    (:meth:`_fitting_closing`); regions of :data:`SLIDE_KINDS` are entered from their front
    (:meth:`_slide`). The travel height clears objects and fixtures near the path
    (:meth:`_Expert._travel`)."""

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
        self.region = region
        self.drawer = region is not None and region.kind == "drawer"
        self.slide = region is not None and region.kind in SLIDE_KINDS
        # region sites are boxes whose half height covers the drawer's walls (see sim.assets)
        self._wall_height = (2.0 * float(self.world.model.site(region.site).size[2])
                             if self.drawer else 0.0)
        self._closing: np.ndarray | None = None
        self._start_z: float | None = None
        self._spot: np.ndarray | None = None
        self._exact_turn = False
        # an object held by its handle (the frypan) sits this far from the hand, m
        self._grip_offset = 0.0
        site = handle_grasp_site(self.world, self.obj)
        if site is not None:
            body = self.world.model.body(self.obj).id
            self._grip_offset = float(np.linalg.norm(self._site_pos(site)
                                                     - self.world.data.xpos[body]))
        skip = {self.obj, self.target}
        if region is not None:
            skip.add(region.owner)
        self._not_obstacles = frozenset(skip)

    def _choose_spot(self, obs: Observation) -> np.ndarray:
        """Release point ``(x, y)`` in the target region's site frame, m: a free spot of the
        region (:func:`robot_skills.perception.placement.release_point`, the function learned
        place skills and the executor's recordings use too)."""
        return release_point(self.world.world_model, obs.object_poses, self.obj, self.target)

    def _fitting_closing(self, obs: Observation, closing: np.ndarray) -> np.ndarray:
        """The finger axis (xy, base frame) that turns the held object so its footprint fits
        the target region (a book into a narrow caddy compartment): unchanged when it already
        fits, else turned by the smallest multiple of a quarter turn that aligns the object's
        sides with the region's and fits best."""
        model = self.world.model
        size = np.asarray(model.site_size[model.site(self.region.site).id], float)
        yaw_o = _yaw(np.asarray(obs.object_poses[self.obj][3:7], float))
        yaw_s = _yaw(np.asarray(obs.object_poses[self.target][3:7], float))
        hx, hy = float(self.half[0]), float(self.half[1])

        def margin(yaw: float) -> float:
            c, s_ = abs(math.cos(yaw - yaw_s)), abs(math.sin(yaw - yaw_s))
            ex, ey = c * hx + s_ * hy, s_ * hx + c * hy   # footprint in the region's frame
            return min(size[0] - ex, size[1] - ey)

        if margin(yaw_o) >= 0.0:
            return closing
        best, best_key = 0.0, None
        for k in range(4):
            target = yaw_s + k * math.pi / 2
            delta = (target - yaw_o + math.pi) % (2 * math.pi) - math.pi
            key = (round(margin(target), 4), -abs(delta))
            if best_key is None or key > best_key:
                best, best_key = delta, key
        c, s_ = math.cos(best), math.sin(best)
        return np.array([c * closing[0] - s_ * closing[1], s_ * closing[0] + c * closing[1]])

    def _goal_xy_z(self, obs: Observation) -> tuple[np.ndarray, float]:
        pose = obs.object_poses[self.target]
        p = np.array(pose[:3], dtype=np.float64)
        if self.region is not None:
            if self._spot is None:
                self._spot = self._choose_spot(obs)
            R = _quat_to_mat(pose[3:7])
            p = p + R @ np.array([self._spot[0], self._spot[1], 0.0])
        top = self._top_z(obs, self.target)
        if self.target in self.world.scene.objects:
            other = self.world.scene.objects[self.target]
            if "container" in other.tags:  # e.g. a bowl: release just above its rim
                top = float(pose[2] + other.half_extents[2])
        return p, top

    HAND_OUT = 0.04
    """While sliding an object into a covered region, the tool centre point stays this far
    outside the region's front plane, m (the hand body reaches 0.03 m across its fingers)."""
    HAND_TOP = 0.11
    """Height of the top of the hand above the tool centre point, m."""
    FINGERS_OUT = 0.02
    """As :attr:`HAND_OUT` when the palm passes above the fixture: the fingers' half thickness
    and a margin, m."""

    def _slide(self, obs: Observation) -> Action:
        """Place into a region reached from its front (:data:`SLIDE_KINDS`; its site's -y side
        is the opening, as LIBERO draws the microwave and the shelf).

        The hand turns so that the held object leads (its centre ahead of the hand, along the
        inward normal), lines up outside the opening with the object's bottom
        :attr:`CLEARANCE` above the region's floor, slides in until the object's centre is as
        deep as the hand allows (the hand itself enters only if it fits under the region's
        ceiling; else it stays :attr:`HAND_OUT` outside the front plane), lets go and backs out.
        """
        tpose = np.asarray(obs.object_poses[self.target], float)
        Rs = _quat_to_mat(tpose[3:7])
        size = np.asarray(self.world.model.site_size[self.world.model.site(self.region.site).id],
                          float)
        n_in = np.array([Rs[0, 1], Rs[1, 1], 0.0])
        n_in /= max(float(np.linalg.norm(n_in)), 1e-9)
        floor, ceiling = float(tpose[2]), float(tpose[2] + 2 * size[2])
        front = tpose[:3] - size[1] * n_in
        obj = np.asarray(obs.object_poses[self.obj][:3], float)
        offset = obj - obs.ee_pos
        if self._closing is None:
            cur = _quat_to_mat(obs.ee_quat)[:2, 1].copy()
            h = offset[:2]
            if float(np.linalg.norm(h)) > 0.02:
                delta = math.atan2(n_in[1], n_in[0]) - math.atan2(h[1], h[0])
                c, s_ = math.cos(delta), math.sin(delta)
                cur = np.array([c * cur[0] - s_ * cur[1], s_ * cur[0] + c * cur[1]])
            self._closing = cur
            self._lead = float(np.linalg.norm(h))
            self._slide_phase = "approach"
        # the exact turn, not the symmetric grip nearest the current one: a half turn of the
        # hand would swing an object held off-centre (by its handle) behind it
        R = _gripper_frame(np.array([0.0, 0.0, -1.0]),
                           np.array([self._closing[0], self._closing[1], 0.0]))
        if self._start_z is None:
            self._start_z = float(obs.ee_pos[2])
        below = float(self.half[2] - offset[2])
        z_ins = floor + self.CLEARANCE + below
        foot = float(np.hypot(self.half[0], self.half[1]))
        fx = self.world.scene.fixtures.get(self.region.owner)
        fixture_top = (float(fx.pos[2] + 2 * fx.half_extents[2]) if fx is not None
                       else ceiling)
        if z_ins + self.HAND_TOP <= ceiling - 0.005:
            depth = float(size[1])
        else:
            # the palm above the fixture's top: only the fingers must stay out of the opening
            hand_out = (self.FINGERS_OUT if z_ins + PALM_ABOVE_TCP > fixture_top + 0.002
                        else self.HAND_OUT)
            depth = float(np.clip(self._lead - hand_out, 0.015, size[1]))
        obj_goal = front + depth * n_in
        ee_in = np.array([obj_goal[0] - offset[0], obj_goal[1] - offset[1], z_ins])
        if self._slide_phase == "approach":
            # the hand's lead is fixed once turned: aim from the planned lead, not the live
            # offset, so the target does not swing while the wrist turns
            ee_in[:2] = obj_goal[:2] - self._lead * n_in[:2]
        pre = ee_in - (depth + foot + 0.02) * n_in
        pre[2] = z_ins
        ee = obs.ee_pos
        out_depth = float((ee - front) @ n_in)        # < 0: the hand is outside the opening
        if self.released:
            if out_depth > -(self.HAND_OUT + foot + 0.02):
                return self._action(obs, ee - 0.05 * n_in, R, GRIPPER_OPEN, max_step=0.012)
            return self._action(obs, np.array([ee[0], ee[1], z_ins + 0.12]), R, GRIPPER_OPEN)
        if self._slide_phase == "approach":
            safe_z = max(fixture_top + below + self.OBSTACLE_CLEARANCE, self._start_z + self.START_LIFT,
                         z_ins)
            move = self._travel(obs, pre, safe_z, R, GRIPPER_CLOSE, exclude=self._not_obstacles,
                                below=below, radius=max(self.HAND_HALF_WIDTH,
                                                        foot + float(np.linalg.norm(offset[:2]))))
            if move is not None:
                return move
            if ee[2] - z_ins > Z_TOL:
                return self._action(obs, pre, R, GRIPPER_CLOSE, max_step=0.015)
            self._slide_phase = "insert"
        if float(np.linalg.norm(ee[:2] - ee_in[:2])) > 0.006:
            return self._action(obs, ee_in, R, GRIPPER_CLOSE, max_step=0.01)
        self.released = True
        return self._action(obs, ee, R, GRIPPER_OPEN)

    RELEASE_HAND_MARGIN = 0.01
    """Gap wanted between the hand's footprint at the release pose and a fixture part that
    reaches above the palm there, m."""
    TURNS = (math.pi / 2, -math.pi / 2, math.pi / 4, -math.pi / 4, 3 * math.pi / 4,
             -3 * math.pi / 4, math.pi)
    """Wrist turns (rad, about the vertical) tried, in this order, when the hand would land on
    a fixture at the release pose."""
    WRIST_MARGIN = 0.35
    """A turn may not bring the last arm joint closer than this to its limit, rad."""

    @staticmethod
    def _grid(c: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Points 1 cm apart covering the box footprint of centre ``c`` and half sizes ``h``
        (xy, m), ``(n, 2)``."""
        nx = max(1, int(math.ceil(2 * h[0] / 0.01)))
        ny = max(1, int(math.ceil(2 * h[1] / 0.01)))
        xs = c[0] - h[0] + (np.arange(nx) + 0.5) * (2 * h[0] / nx)
        ys = c[1] - h[1] + (np.arange(ny) + 0.5) * (2 * h[1] / ny)
        return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)

    def _obstacle_points(self, obs: Observation, above_z: float) -> list[np.ndarray]:
        """Footprints (xy, base frame, m; grids of points 1 cm apart) of what reaches higher than
        ``above_z`` (base-frame z, m): collidable fixture parts (the table left out) and objects
        other than the held one and the target (world-aligned bounding boxes)."""
        m, d = self.world.model, self.world.data
        pts: list[np.ndarray] = []
        for name, info in self.world.scene.objects.items():
            if name in (self.obj, self.target) or name not in obs.object_poses:
                continue
            pose = np.asarray(obs.object_poses[name], float)
            ext = np.abs(_quat_to_mat(pose[3:7])) @ np.asarray(info.half_extents, float)
            if pose[2] + ext[2] > above_z:
                pts.append(self._grid(pose[:2], ext[:2]))
        for fname, fx in self.world.scene.fixtures.items():
            if fname == self.world.scene.table:
                continue
            for bname in fx.bodies:
                b = m.body(bname).id
                for g in range(int(m.body_geomadr[b]), int(m.body_geomadr[b] + m.body_geomnum[b])):
                    if m.geom_contype[g] == 0 and m.geom_conaffinity[g] == 0:
                        continue
                    R = d.geom_xmat[g].reshape(3, 3)
                    aabb = m.geom_aabb[g]
                    c = d.geom_xpos[g] + R @ aabb[:3]
                    h = np.abs(R) @ aabb[3:]
                    if c[2] + h[2] > above_z:
                        pts.append(self._grid(c[:2], h[:2]))
        return pts

    @staticmethod
    def _hand_clearance(pts: list[np.ndarray], ee_xy: np.ndarray, closing: np.ndarray) -> float:
        """Smallest gap, m, between the hand's footprint (centred at ``ee_xy``, its long side
        along the finger axis ``closing``) and the points ``pts`` (1 cm discs)."""
        c = np.asarray(closing, float) / max(float(np.linalg.norm(closing)), 1e-9)
        n = np.array([-c[1], c[0]])
        hx, hy = PickExpert._HAND_HALF
        clear = np.inf
        for p in pts:
            rel = p - ee_xy
            dx = np.maximum(np.abs(rel @ c) - hx, 0.0)
            dy = np.maximum(np.abs(rel @ n) - hy, 0.0)
            clear = min(clear, float(np.min(np.hypot(dx, dy))) - 0.006)
        return clear

    def _clear_turn(self, obs: Observation, closing: np.ndarray) -> np.ndarray | None:
        """An exact finger axis (xy, base frame) that turns the wrist so the hand clears the
        fixtures and objects at the release pose, or None to keep ``closing``.

        An object held off-centre (a bowl taken by its wall) hangs beside the hand, so the hand
        body lands that far off the release point; beside a tall fixture (a cabinet next to the
        plate) it can come down on the fixture's top and stall above the target. The hand's
        long side (0.2 m across the fingers) can likewise land on a tall neighbour of the target
        (a wine bottle beside the bowl). When the hand's footprint at the release pose (the
        object's bottom :attr:`CLEARANCE` above the target) comes within
        :attr:`RELEASE_HAND_MARGIN` of a fixture part or object that reaches above the palm,
        the wrist turns (the object swinging with it about the tool centre point) by the first
        of :attr:`TURNS` that clears it and keeps the last joint :attr:`WRIST_MARGIN` inside its
        limits (else the clearest such turn, if clearer than none).
        """
        ee = np.asarray(obs.ee_pos, float)
        obj = np.asarray(obs.object_poses[self.obj][:3], float)
        off = obj[:2] - ee[:2]
        goal, top = self._goal_xy_z(obs)
        release_z = float(ee[2] + (top + self.CLEARANCE) - (obj[2] - self.half[2]))
        pts = self._obstacle_points(obs, release_z + PALM_ABOVE_TCP - 0.005)
        if not pts:
            return None
        best_clear = self._hand_clearance(pts, goal[:2] - off, closing)
        if best_clear >= self.RELEASE_HAND_MARGIN:
            return None
        cur = _quat_to_mat(obs.ee_quat)[:2, 1]
        m = self.world.model
        jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "panda/joint7")
        q7 = float(self.world.data.qpos[m.jnt_qposadr[jid]]) if jid >= 0 else 0.0
        lim = (float(m.jnt_range[jid][1]) if jid >= 0 else math.pi) - self.WRIST_MARGIN
        best = None
        for th in self.TURNS:
            if abs(q7 - th) > lim:       # the last joint turns opposite to a yaw of the hand
                continue
            c_, s_ = math.cos(th), math.sin(th)
            rot = np.array([[c_, -s_], [s_, c_]])
            turned = rot @ cur
            clear = self._hand_clearance(pts, goal[:2] - rot @ off, turned)
            if clear >= self.RELEASE_HAND_MARGIN:
                return turned
            if clear > best_clear + 0.005:
                best, best_clear = turned, clear
        return best

    def act(self, obs: Observation) -> Action:
        if self.slide:
            return self._slide(obs)
        if self._closing is None:
            # keep the finger axis the grasp was made with; over a drawer turn the fingers
            # across the drawer, so neither finger swings into the cabinet above it
            self._closing = _quat_to_mat(obs.ee_quat)[:2, 1].copy()
            self._exact_turn = False
            if self.drawer:
                self._closing = _quat_to_mat(obs.object_poses[self.target][3:7])[:2, 1].copy()
            elif self.region is not None and self.region.kind not in ("table", "surface"):
                self._closing = self._fitting_closing(obs, self._closing)
            if not self.drawer and (self.region is None
                                    or self.region.kind in ("table", "surface")):
                turned = self._clear_turn(obs, self._closing)
                if turned is not None:
                    self._closing, self._exact_turn = turned, True
        if self._exact_turn:
            # the exact turn, not the symmetric grip nearest the current one (that could undo it)
            R = _gripper_frame(np.array([0.0, 0.0, -1.0]),
                               np.array([self._closing[0], self._closing[1], 0.0]))
        else:
            R = _down_frame(self._closing, _quat_to_mat(obs.ee_quat))
        goal, top = self._goal_xy_z(obs)
        obj = obs.object_poses[self.obj]
        offset = obj[:3] - obs.ee_pos          # held object relative to the hand
        if not self.released and float(np.linalg.norm(offset)) > self.LOST + self._grip_offset:
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
        move = self._travel(obs, ee_goal, safe_z, R, GRIPPER_CLOSE, exclude=self._not_obstacles,
                            below=float(self.half[2] - offset[2]),
                            radius=max(self.HAND_HALF_WIDTH,
                                       float(np.hypot(self.half[0], self.half[1])
                                             + np.linalg.norm(offset[:2]))))
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
        let_go = None if self.grasped else self._let_go(obs)
        if let_go is not None:
            return let_go
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
        back = None if self.grasped else (self._let_go(obs) or self._backout(obs))
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
        return self._descend_and_close(obs, g, R, exclude=frozenset({self.stove}))


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
        back = self._let_go(obs) or self._backout(obs)
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
                                GRIPPER_CLOSE, xy_tol=0.012, exclude=frozenset({self.obj})) \
                or self._action(obs, np.array([spot[0], spot[1], hover_z]), R, GRIPPER_CLOSE)
        return self._action(obs, np.array([spot[0], spot[1], push_z]), R, GRIPPER_CLOSE,
                            max_step=0.015)


# ------------------------------------------------------------------------------------------
# open / close a hinged door (the microwave)


class DoorExpert(_Expert):
    """``open(fixture)`` / ``close(fixture)`` for a fixture with a hinged door (the microwave).

    Reads the door's hinge angle and two sites of the door body: ``"<fixture>_door_handle"`` (the
    middle of a vertical handle bar standing off the door's outer face; site x = the door's
    outward normal, y = along the door away from the hinge) and ``"<fixture>_door_hinge_axis"``.

    * **open**: a top-down hand closes across the handle bar (fingers along the door, passing
      beside the bar's standoffs), then pulls the bar along its circle about the hinge — each
      step's target is the handle moved :attr:`PULL_STEP` along the door's current outward
      normal — turning the wrist with the door, until the angle passes the ``Open`` threshold by
      :attr:`OPEN_MARGIN`; then it lets go and rises.
    * **close**: closed fingertips come down beside the door's outer face, :attr:`PUSH_FROM_HANDLE`
      inboard of the handle, and push along the door's inward normal, following the door as it
      swings, until the angle is below the ``Close`` threshold.
    """

    PULL_STEP = 0.03
    """Distance the handle target leads the handle along the opening direction, m."""
    OPEN_MARGIN = 0.12
    """How far past the ``Open`` threshold the door is pulled, rad."""
    STALL_STEPS = 8
    """Steps without progress after which a pull that already passed the ``Open`` threshold
    (by 0.02 rad) lets go: the arm is at the edge of its reach."""
    PUSH_FROM_HANDLE = 0.07
    """The push point lies this far from the handle toward the hinge, along the door, m."""
    FINGER_HALF = 0.012
    """Half thickness of the closed fingers across the door face, m."""
    STANDOFF = 0.06
    """Distance off the door face at which the pushing hand comes down, m."""
    GRIP_BELOW_TOP = 0.04
    """The handle is gripped this far below the top of its bar, m (between its standoffs)."""

    def __init__(self, name: str = "open") -> None:
        self.name = name

    def _bind(self) -> None:
        from sim import assets

        self.fixture = self.args[0]
        fx = self.world.scene.fixtures[self.fixture]
        self.joint = fx.joints["door"]
        self.handle_site = f"{self.fixture}_door_handle"
        self.hinge_site = f"{self.fixture}_door_hinge_axis"
        self.open_q = float(assets.DOOR_OPEN_THRESHOLD) + self.OPEN_MARGIN
        self.closed_q = float(assets.DOOR_CLOSED_THRESHOLD) * 0.5
        self.bar_half = 0.06
        self.phase = "approach"
        self._rise_from: np.ndarray | None = None
        self._sign: float | None = None
        self._best_q, self._stalled = -math.inf, 0
        self._clear_phase: str | None = None
        self._clear_back_from: np.ndarray | None = None
        self._doorway_clear = False

    def _door_q(self) -> float:
        j = self.world.model.joint(self.joint)
        return float(self.world.data.qpos[j.qposadr[0]])

    WRIST_JOINT = "panda/joint7"
    WRIST_MARGIN = 0.25
    """Room kept from the wrist joint's limits, rad."""

    def _finger_sign(self, obs: Observation, u: np.ndarray, q: float) -> float:
        """Which way round (+1 / -1 along the door) the fingers grip the handle.

        Following the door turns the hand about the vertical by the door's swing; a top-down hand
        turns about its own axis with the wrist's last joint, which has about 5.8 rad of range.
        The two symmetric grips differ by half a turn of that joint; the one leaving the most
        room in the direction the door will turn it is taken (falls back to +1 when the model
        has no such joint)."""
        m, d = self.world.model, self.world.data
        if mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, self.WRIST_JOINT) < 0:
            return 1.0
        wj = m.joint(self.WRIST_JOINT)
        q7 = float(d.qpos[wj.qposadr[0]])
        lo, hi = (float(v) for v in m.jnt_range[wj.id])
        dj = m.joint(self.joint)
        axis_z = float((d.xmat[dj.bodyid[0]].reshape(3, 3) @ m.jnt_axis[dj.id])[2])
        # hand yaw follows the door: d(yaw) = axis_z * dq; a top-down hand's yaw moves
        # opposite to the wrist joint, so the wrist turns by -axis_z * dq
        turn = -axis_z * (self.open_q - q)
        cur = _quat_to_mat(obs.ee_quat)[:2, 1]
        yaw_now = math.atan2(float(cur[1]), float(cur[0]))
        best, best_room = 1.0, -math.inf
        for sign in (1.0, -1.0):
            want = math.atan2(float(sign * u[1]), float(sign * u[0]))
            dyaw = (want - yaw_now + math.pi) % (2 * math.pi) - math.pi
            q7_grasp = q7 - dyaw
            end = q7_grasp + turn
            room = min(q7_grasp - lo, hi - q7_grasp, end - lo, hi - end) - self.WRIST_MARGIN
            if room > best_room:
                best, best_room = sign, room
        return best

    def _frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Handle position, hinge position, door direction (hinge -> free end, xy unit) and
        outward normal (xy unit), all in the base frame."""
        handle = self._site_pos(self.handle_site)
        hinge = self._site_pos(self.hinge_site)
        M = self._site_mat(self.handle_site)
        n_out = np.array([M[0, 0], M[1, 0], 0.0])
        n_out /= max(float(np.linalg.norm(n_out)), 1e-9)
        u = np.array([M[0, 1], M[1, 1], 0.0])
        u /= max(float(np.linalg.norm(u)), 1e-9)
        return handle, hinge, u, n_out

    def _retreat(self, obs: Observation, R: np.ndarray, gripper: float) -> Action:
        if self._rise_from is None:
            self._rise_from = obs.ee_pos.copy()
        return self._action(obs, self._rise_from + np.array([0.0, 0.0, 0.10]), R, gripper)

    def act(self, obs: Observation) -> Action:
        let_go = None if self.grasped else self._let_go(obs)
        if let_go is not None:
            return let_go
        q = self._door_q()
        handle, hinge, u, n_out = self._frame()
        if self.name == "open":
            if self._sign is None:
                self._sign = self._finger_sign(obs, u, q)
            R = _gripper_frame(np.array([0.0, 0.0, -1.0]), self._sign * u)
            return self._open(obs, q, handle, u, n_out, R)
        R = _down_frame(u[:2], _quat_to_mat(obs.ee_quat), handle[:2])
        return self._close(obs, q, handle, hinge, u, n_out, R)

    def _open(self, obs, q, handle, u, n_out, R) -> Action:
        g = handle + np.array([0.0, 0.0, self.bar_half - self.GRIP_BELOW_TOP])
        if self.grasped and self.closed_steps >= CLOSE_STEPS:
            if q > self._best_q + 0.002:
                self._best_q, self._stalled = q, 0
            else:
                self._stalled += 1
        stalled_open = (self._stalled >= self.STALL_STEPS
                        and q >= self.open_q - self.OPEN_MARGIN + 0.02)
        if self.released or (self.grasped and (q >= self.open_q or stalled_open)):
            self.released = True
            if obs.gripper_width < self.RELEASE_WIDTH and self._rise_from is None:
                return self._action(obs, obs.ee_pos, _quat_to_mat(obs.ee_quat), GRIPPER_OPEN)
            return self._retreat(obs, _quat_to_mat(obs.ee_quat), GRIPPER_OPEN)
        if self.grasped:
            self.closed_steps += 1
            if self.closed_steps < CLOSE_STEPS:
                return self._action(obs, g, R, GRIPPER_CLOSE)
            target = g + self.PULL_STEP * n_out
            return self._action(obs, target, R, GRIPPER_CLOSE, max_step=0.012)
        return self._descend_and_close(obs, g, R, exclude=frozenset({self.fixture}))

    CLEAR_PITCH = math.radians(45.0)
    """Pitch from the vertical of the hand that pushes a protruding object into the cavity: the
    fingertips reach into the opening while the wrist stays clear of the fixture's front."""
    CLEAR_MARGIN = 0.012
    """How far inside the opening an object's footprint is pushed before the door swings, m."""

    def _doorway_object(self, obs: Observation):
        """An object in the door's way: in (or just in front of) the fixture's enclosure region
        with its footprint sticking out of the opening. Returns ``(name, inward normal, front
        plane point, needed centre depth, extent along the normal)`` or None."""
        scene = self.world.scene
        for rname, reg in scene.regions.items():
            if reg.owner != self.fixture or reg.kind != "enclosure":
                continue
            pose = np.asarray(obs.object_poses[rname], float)
            Rs = _quat_to_mat(pose[3:7])
            size = np.asarray(self.world.model.site_size[self.world.model.site(reg.site).id], float)
            n_in = np.array([Rs[0, 1], Rs[1, 1], 0.0])
            n_in /= max(float(np.linalg.norm(n_in)), 1e-9)
            lat = np.array([Rs[0, 0], Rs[1, 0], 0.0])
            front = pose[:3] - size[1] * n_in
            for name, info in scene.objects.items():
                op = np.asarray(obs.object_poses[name], float)
                Ro = _quat_to_mat(op[3:7])
                half = np.asarray(info.half_extents, float)
                ext = float(np.abs(n_in @ Ro) @ half)
                depth = float((op[:3] - front) @ n_in)
                if abs(float((op[:3] - pose[:3]) @ lat)) > size[0] or not -ext < depth < 2 * size[1]:
                    continue
                if op[2] < pose[2] - 0.02 or op[2] > pose[2] + 2 * size[2]:
                    continue
                need = min(ext + self.CLEAR_MARGIN, 2 * size[1] - ext)
                if depth < need - 0.005:
                    return name, n_in, front, need, ext
        return None

    def _clear_doorway(self, obs: Observation) -> Action | None:
        """Push an object sticking out of the opening into the cavity, fingertips first with the
        hand pitched by :attr:`CLEAR_PITCH`; None when the doorway is clear."""
        found = self._doorway_object(obs)
        if found is None:
            return None
        name, n_in, front, need, ext = found
        p = np.asarray(obs.object_poses[name][:3], float)
        approach = math.cos(self.CLEAR_PITCH) * np.array([0.0, 0.0, -1.0]) \
            + math.sin(self.CLEAR_PITCH) * n_in
        lateral = np.array([-n_in[1], n_in[0], 0.0])
        Rp = _gripper_frame(approach, lateral)
        ee = obs.ee_pos
        tip = p - (ext + 0.012) * n_in                  # just outside the object's outer end
        tip[2] = p[2]
        pre = tip - 0.10 * approach
        rel = ee - tip
        along = float(rel @ -approach)
        off_line = float(np.linalg.norm(rel + along * approach))
        if self._clear_phase is None:
            self._clear_phase = "line_up"
        if self._clear_phase == "line_up":
            if self._rot_err(obs, Rp) > 0.12 or off_line > 0.01:
                if float(np.linalg.norm(ee - pre)) > 0.02 and ee[2] < pre[2] - 0.02:
                    return self._action(obs, np.array([ee[0], ee[1], pre[2]]), Rp, GRIPPER_CLOSE)
                return self._action(obs, pre, Rp, GRIPPER_CLOSE)
            if along > 0.006:
                return self._action(obs, tip, Rp, GRIPPER_CLOSE, max_step=0.015)
            self._clear_phase = "push"
        depth = float((p - front) @ n_in)
        target = ee + (need - depth + 0.01) * n_in
        target[2] = tip[2]
        return self._action(obs, target, Rp, GRIPPER_CLOSE, max_step=0.01)

    def _close(self, obs, q, handle, hinge, u, n_out, R) -> Action:
        if self.phase == "approach" and not self._doorway_clear and q > self.closed_q:
            clear = self._clear_doorway(obs)
            if clear is not None:
                return clear
            if self._clear_phase is not None:
                # done pushing: back out along the tool axis before going round to the door
                approach = _quat_to_mat(obs.ee_quat)[:, 2]
                if self._clear_back_from is None:
                    self._clear_back_from = obs.ee_pos.copy()
                if float(np.linalg.norm(obs.ee_pos - self._clear_back_from)) < 0.08:
                    return self._action(obs, self._clear_back_from - 0.1 * approach,
                                        _quat_to_mat(obs.ee_quat), GRIPPER_CLOSE)
            self._doorway_clear = True
        # the outer face at the push point, then the fingers' centre just off it
        face = handle - (handle - hinge) @ n_out * n_out
        face[2] = handle[2]
        push = face - self.PUSH_FROM_HANDLE * u
        if self.released or q <= self.closed_q:
            self.released = True
            return self._retreat(obs, _quat_to_mat(obs.ee_quat), GRIPPER_CLOSE)
        contact = push + self.FINGER_HALF * n_out
        pre = push + self.STANDOFF * n_out
        ee = obs.ee_pos
        rel = ee - push
        out = float(rel[:2] @ n_out[:2])
        along = float(rel[:2] @ u[:2])
        if self.phase == "approach":
            top = float(handle[2] + 0.11)         # above the door's top edge
            if ee[2] < top - 0.02 and (out < 0.02 or abs(along) > 0.05):
                # not beside the outer face: go up (and over the door) first
                return self._action(obs, np.array([ee[0], ee[1], top]), R, GRIPPER_CLOSE)
            if float(np.linalg.norm(ee[:2] - pre[:2])) > 0.01 or self._rot_err(obs, R) > 0.1:
                return self._action(obs, np.array([pre[0], pre[1], max(top, ee[2])]), R,
                                    GRIPPER_CLOSE)
            if ee[2] > pre[2] + Z_TOL:
                return self._action(obs, pre, R, GRIPPER_CLOSE)
            self.phase = "push"
        # push along the inward normal, following the door as it swings
        target = contact - 0.04 * n_out
        target[2] = push[2]
        return self._action(obs, target, R, GRIPPER_CLOSE, max_step=0.012)


class OpenCloseExpert(_Expert):
    """``open`` / ``close``: a drawer region (:class:`DrawerExpert`) or a fixture with a hinged
    door (:class:`DoorExpert`), chosen from what the argument is in the scene."""

    def __init__(self, name: str = "open") -> None:
        self.name = name
        self._impl: _Expert | None = None

    def reset(self, args: Sequence[str], world) -> None:
        """Bind ``args`` (one openable entity) and ``world``; pick the expert for its kind.

        Raises:
            KeyError: if the entity is neither a drawer region nor a fixture with a door.
        """
        target = args[0]
        fx = world.scene.fixtures.get(target)
        if fx is not None and "door" in fx.joints:
            self._impl = DoorExpert(self.name)
        elif target in world.scene.regions and world.scene.regions[target].joint is not None:
            self._impl = DrawerExpert(self.name)
        else:
            raise KeyError(f"{self.name}({target}): {target!r} is neither a drawer region nor a "
                           "fixture with a hinged door in this scene")
        self._impl.reset(args, world)

    def act(self, obs: Observation) -> Action:
        """The chosen expert's action."""
        if self._impl is None:
            raise RuntimeError(f"{self.name}: act() before reset()")
        return self._impl.act(obs)


def make_expert(skill: str) -> _Expert:
    """A fresh scripted expert for ``skill`` (one of :data:`robot_skills.domain.verbs.SKILL_SPECS`).

    Raises:
        KeyError: for a verb with no expert.
    """
    makers = {
        "pick": PickExpert,
        "place_on": lambda: PlaceExpert("place_on"),
        "place_in": lambda: PlaceExpert("place_in"),
        "open": lambda: OpenCloseExpert("open"),
        "close": lambda: OpenCloseExpert("close"),
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
