"""The safety filter every joint command passes through before the ROS 2 bridge publishes it.

Pure numpy (plus an optional forward-kinematics callable), so it is tested exhaustively without ROS.
The bridge builds one :class:`SafetyFilter` per arm from the preset's ``safety`` mapping
(:meth:`SafetyLimits.from_dict`) and calls :meth:`SafetyFilter.filter` once per control period with
the command a skill (through the IK) asks for; it publishes :attr:`SafetyDecision.q_command` (with
:attr:`SafetyDecision.velocity` as the trajectory point's velocities) or nothing when that is None.
It is on by default and a skill cannot bypass it: skills only produce actions.

**Invariant.** Every command the filter returns (``q_command`` not None) satisfies, to rounding:

* position: ``joint_lower + position_margin <= q <= joint_upper - position_margin``;
* step: ``|q - q_measured| <= max_step`` (LeRobot's ``max_relative_target``);
* velocity: ``|v| <= max_velocity`` with ``v = (q - q_ref) / control_period``;
* acceleration: ``|v - v_ref| <= max_acceleration * control_period``;
* workspace (when ``forward_kinematics`` is given): the tool position's distance outside the box
  ``[workspace_lower, workspace_upper]`` is no larger than the reference's -- a reference inside
  the box keeps every command inside it.

``(q_ref, v_ref)`` -- :attr:`SafetyFilter.reference` -- is the previous published command and its
velocity. At :meth:`SafetyFilter.reset` (and on the first call, if never reset) it is the measured
state clipped into the position margins with zero velocity. After a period in which nothing was
published the reference velocity is zero (the JointTrajectoryController holds its last point),
and after an *infeasible* period (below) the reference is re-anchored at the measured state.

**Rules, in order.**

1. No finite measured state of the right shape: publish nothing, ``hold``, ``stop_skill``
   (``stale_state``).
2. E-stop engaged (:meth:`SafetyFilter.engage_estop`, latched until :meth:`~SafetyFilter.reset_estop`)
   -> ``hold`` + ``stop_skill`` (``estop``); state older than ``stale_after_periods`` control
   periods (``|now - state_stamp|`` too large or not finite: a stamp from the future is as
   suspect as an old one) -> ``hold`` + ``stop_skill`` (``stale_state``); a target with NaN/inf or
   the wrong shape -> ``hold`` + ``stop_skill`` (``nan_input``). A *hold* commands a controlled
   stop: the point of the feasible set (below) nearest the last command, i.e. braking at no more
   than ``max_acceleration`` (a stop category 2), then standing still at the last safe command.
3. Otherwise the target is brought into the feasible box, per joint the intersection of the
   position margins (``clip_position``), ``q_measured +/- max_step`` (``limit_step``), the
   velocity limit -- including a braking look-ahead, ``v^2 / (2 a) + v dt <= distance to the
   margin``, so the arm can always stop before a joint limit (``limit_velocity``) -- and
   ``v_ref +/- a dt`` (``limit_acceleration``). With ``step_scaling="uniform"`` (default) the
   target is first saturated into the position margins per joint, then the step from the stop
   point towards it is scaled by the one largest factor that fits the box (the end-effector keeps
   its direction); with ``"per_joint"`` each joint is clipped into the box on its own.
4. Workspace (``workspace``): if the clipped command's tool position is further outside the box
   than the reference's (outside at all, when the reference is inside), the command is scaled
   back, by bisection, along the segment from the stop point (the feasible point nearest the last
   command) to it, to the furthest point that is not; if even the stop point is further out,
   nothing is published (``hold``). So motion towards the box is always allowed and an arm whose
   reference is outside (reset there) may only move in ways that do not take it further out.
5. If the feasible box is empty (the measured state is far from the last command, e.g. the arm was
   pushed, or it stands more than ``max_step`` beyond a margin), nothing is published, ``hold``
   (``infeasible``), and the reference is re-anchored at the measured state.

Every intervention is counted (:attr:`SafetyFilter.counters`) and logged on the
``robot_skills.safety`` logger (warnings for stops, info for clipping; each kind at most once per
second, with its running count).
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields

import numpy as np

logger = logging.getLogger("robot_skills.safety")

INTERVENTIONS = ("clip_position", "limit_step", "limit_velocity", "limit_acceleration",
                 "workspace", "nan_input", "stale_state", "estop", "infeasible")
"""Every intervention kind the filter reports and counts."""
STEP_SCALINGS = ("uniform", "per_joint")
"""The ways :class:`SafetyFilter` brings a target into the rate limits (``SafetyLimits.step_scaling``)."""
_STOP_KINDS = frozenset({"nan_input", "stale_state", "estop", "infeasible"})
_LOG_INTERVAL_S = 1.0
_EPS = 1e-12
_BISECT_ITERS = 16


@dataclass(frozen=True, kw_only=True, eq=False)
class SafetyLimits:
    """The limits :class:`SafetyFilter` enforces (radians, seconds, metres; base frame).

    Attributes:
        joint_lower / joint_upper: ``(n,)`` joint position limits, rad.
        position_margin: kept inside the limits, rad (``>= 0``; the margins must leave room).
        max_velocity: ``(n,)`` rad/s (> 0).
        max_acceleration: ``(n,)`` rad/s^2 (> 0).
        max_step: largest joint change per command relative to the measured state, rad (> 0).
        workspace_lower / workspace_upper: ``(3,)`` tool-position box in the robot base frame, m.
        stale_after_periods: joint states older than this many control periods stop the skill.
        step_scaling: how a target beyond the rate limits (step, velocity, acceleration) is
            brought into them. ``"uniform"`` (default): the whole joint step from the stop point
            (normally the previous command) towards the target is scaled by one factor, so every
            joint keeps its share of the motion and the end-effector moves along the path the
            skill asked for, only slower (time scaling, as ros2_control's speed scaling and
            Franka's rate limiter do). ``"per_joint"``: each joint is clipped on its own (faster,
            but a limited joint lags the others and the end-effector path bends). Position
            margins always saturate per joint (a joint at its limit does not freeze the others).

    Arrays are stored read-only as float64. Raises ``ValueError`` naming the offending key.
    """

    joint_lower: np.ndarray
    joint_upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    workspace_lower: np.ndarray
    workspace_upper: np.ndarray
    position_margin: float = 0.02
    max_step: float = 0.05
    stale_after_periods: int = 3
    step_scaling: str = "uniform"

    def __post_init__(self) -> None:
        if self.step_scaling not in STEP_SCALINGS:
            raise ValueError(f"step_scaling must be one of {STEP_SCALINGS}, got "
                             f"{self.step_scaling!r}")
        lower = _vector("joint_lower", self.joint_lower)
        n = lower.shape[0]
        vals = {
            "joint_lower": lower,
            "joint_upper": _vector("joint_upper", self.joint_upper, n),
            "max_velocity": _vector("max_velocity", self.max_velocity, n, broadcast=True),
            "max_acceleration": _vector("max_acceleration", self.max_acceleration, n,
                                        broadcast=True),
            "workspace_lower": _vector("workspace_lower", self.workspace_lower, 3),
            "workspace_upper": _vector("workspace_upper", self.workspace_upper, 3),
        }
        for key, arr in vals.items():
            arr.setflags(write=False)
            object.__setattr__(self, key, arr)
        margin = _scalar("position_margin", self.position_margin)
        step = _scalar("max_step", self.max_step)
        periods = self.stale_after_periods
        if isinstance(periods, (float, np.floating)) and float(periods).is_integer():
            periods = int(periods)
        if isinstance(periods, bool) or not isinstance(periods, (int, np.integer)) or periods < 1:
            raise ValueError(f"stale_after_periods must be an integer >= 1, got {periods!r}")
        object.__setattr__(self, "position_margin", margin)
        object.__setattr__(self, "max_step", step)
        object.__setattr__(self, "stale_after_periods", int(periods))
        if margin < 0:
            raise ValueError(f"position_margin must be >= 0 rad, got {margin}")
        if step <= 0:
            raise ValueError(f"max_step must be > 0 rad, got {step}")
        if np.any(self.joint_upper - self.joint_lower <= 2 * margin):
            raise ValueError(f"joint_upper must exceed joint_lower by more than 2 * position_margin "
                             f"({margin}) on every joint, got joint_lower={self.joint_lower}, "
                             f"joint_upper={self.joint_upper}")
        for key in ("max_velocity", "max_acceleration"):
            if np.any(getattr(self, key) <= 0):
                raise ValueError(f"{key} must be > 0 on every joint, got {getattr(self, key)}")
        if np.any(self.workspace_upper <= self.workspace_lower):
            raise ValueError(f"workspace_upper must exceed workspace_lower on every axis, got "
                             f"{self.workspace_lower}, {self.workspace_upper}")

    @property
    def n_joints(self) -> int:
        """Number of joints ``n``."""
        return int(self.joint_lower.shape[0])

    @classmethod
    def from_dict(cls, d: Mapping) -> SafetyLimits:
        """Build from a preset's ``safety`` mapping (plain dict or OmegaConf node).

        Keys are the attribute names; ``position_margin``, ``max_step`` and
        ``stale_after_periods`` are optional; ``max_velocity`` / ``max_acceleration`` may be one
        number for every joint.

        Raises:
            ValueError: naming the key, on a missing or unknown key, a wrong shape, a non-finite
                or non-numeric value, or inconsistent values.
        """
        if not isinstance(d, Mapping) and not hasattr(d, "items"):
            raise ValueError(f"safety limits must be a mapping, got {type(d).__name__}")
        d = {str(k): v for k, v in d.items()}
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown safety limit key(s) {unknown}; known: {names}")
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [k for k in required if k not in d]
        if missing:
            raise ValueError(f"missing safety limit key(s) {missing}")
        kw = {}
        for key, value in d.items():
            if key in ("stale_after_periods", "step_scaling"):
                kw[key] = value
            elif key in ("position_margin", "max_step"):
                kw[key] = _scalar(key, value)
            else:
                kw[key] = _plain(key, value)
        return cls(**kw)


def _plain(key: str, value) -> np.ndarray:
    """A number or a flat sequence of numbers (bools, strings and None refused) as float64."""
    bad = ValueError(f"{key} must be numbers, got {value!r}")
    if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        raise bad
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise bad
        return value.astype(np.float64)
    if isinstance(value, numbers.Real):
        return np.asarray(float(value))
    try:
        items = list(value)
    except TypeError:
        raise bad from None
    if not all(isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) for x in items):
        raise bad
    return np.asarray([float(x) for x in items], dtype=np.float64)


def _vector(key: str, value, n: int | None = None, broadcast: bool = False) -> np.ndarray:
    arr = _plain(key, value)
    if broadcast and n is not None and arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = np.array(arr, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] == 0 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(n,), n >= 1"
        raise ValueError(f"{key} must have shape {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{key} must be finite, got {arr}")
    return arr


def _scalar(key: str, value) -> float:
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise ValueError(f"{key} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{key} must be finite, got {value!r}")
    return x


@dataclass(frozen=True)
class SafetyDecision:
    """What to publish this control period.

    Attributes:
        q_command: ``(n,)`` joint positions to publish, rad, or None: publish nothing (the
            JointTrajectoryController keeps holding its last point).
        velocity: ``(n,)`` rad/s velocities for the trajectory point (the command's velocity
            relative to the previous one), or None with ``q_command``.
        hold: the skill's target was not followed: the command (if any) is a controlled stop at
            the last safe command, or nothing is published.
        stop_skill: the running skill must stop (e-stop, stale or invalid state, invalid target).
        interventions: the kinds (:data:`INTERVENTIONS`) that acted this period, in rule order.
    """

    q_command: np.ndarray | None
    velocity: np.ndarray | None
    hold: bool
    stop_skill: bool
    interventions: tuple[str, ...]


def _scale_into_box(target: np.ndarray, ref: np.ndarray, start: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray) -> np.ndarray:
    """One factor for every joint: the point ``ref + s (target - ref)`` with the largest ``s`` in
    ``[0, 1]`` inside the box ``[lo, hi]`` -- the step keeps the direction from the previous
    command ``ref`` to the target. When no point of that line is in the box (a joint must still
    brake or speed up more than the line allows), the same from ``start``, which lies in the box.
    All arrays ``(n,)``."""
    d = target - ref
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (lo - ref) / d
        b = (hi - ref) / d
    s_lo = np.where(d > 0, a, np.where(d < 0, b, np.where((lo <= ref) & (ref <= hi), -np.inf,
                                                            np.inf)))
    s_hi = np.where(d > 0, b, np.where(d < 0, a, np.inf))
    s0, s1 = max(0.0, float(np.max(s_lo))), min(1.0, float(np.min(s_hi)))
    if s0 <= s1:
        return np.minimum(np.maximum(ref + s1 * d, lo), hi)
    d = target - start
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(d > 0, (hi - start) / d, np.where(d < 0, (lo - start) / d, np.inf))
    s = float(min(1.0, max(0.0, float(np.min(room)))))
    return np.minimum(np.maximum(start + s * d, lo), hi)


def _outside(p, lo: tuple[float, ...], hi: tuple[float, ...]) -> float:
    """Euclidean distance of point ``p`` outside the box ``[lo, hi]`` (0 inside; inf if invalid)."""
    try:
        x, y, z = (float(c) for c in np.asarray(p, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        return math.inf
    e2 = 0.0
    for c, lo_c, hi_c in ((x, lo[0], hi[0]), (y, lo[1], hi[1]), (z, lo[2], hi[2])):
        if c < lo_c:
            e2 += (lo_c - c) ** 2
        elif c > hi_c:
            e2 += (c - hi_c) ** 2
        elif not c == c:  # NaN
            return math.inf
    return math.sqrt(e2) if math.isfinite(e2) else math.inf


class SafetyFilter:
    """Enforces :class:`SafetyLimits` on a stream of joint targets (see the module docstring).

    Args:
        limits: the limits.
        control_period: seconds between :meth:`filter` calls (> 0).
        forward_kinematics: ``fk(q (n,)) -> (3,)`` tool position in the base frame, m; None skips
            the workspace rule. ``ArmDescription.tcp_position_fn()`` makes one.

    Raises:
        ValueError: on a non-positive period or a non-callable ``forward_kinematics``.
    """

    def __init__(self, limits: SafetyLimits, control_period: float,
                 forward_kinematics: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if not isinstance(limits, SafetyLimits):
            raise ValueError(f"limits must be SafetyLimits, got {type(limits).__name__}")
        dt = _scalar("control_period", control_period)
        if dt <= 0:
            raise ValueError(f"control_period must be > 0 s, got {control_period}")
        if forward_kinematics is not None and not callable(forward_kinematics):
            raise ValueError("forward_kinematics must be callable or None")
        self.limits = limits
        self.control_period = dt
        self._fk = forward_kinematics
        self._n = limits.n_joints
        self._lo = limits.joint_lower + limits.position_margin
        self._hi = limits.joint_upper - limits.position_margin
        self._vmax = limits.max_velocity
        self._amax = limits.max_acceleration
        self._adt = limits.max_acceleration * dt
        self._ws_lo = tuple(float(x) for x in limits.workspace_lower)
        self._ws_hi = tuple(float(x) for x in limits.workspace_upper)
        self._max_age = limits.stale_after_periods * dt
        self._q_ref: np.ndarray | None = None
        self._v_ref = np.zeros(self._n)
        self._d_ref = 0.0
        self._estop_reason: str | None = None
        self._counters: Counter[str] = Counter()
        self._last_log: dict[str, float] = {}

    # ------------------------------------------------------------------ state
    @property
    def estopped(self) -> bool:
        """True while the e-stop is engaged."""
        return self._estop_reason is not None

    @property
    def estop_reason(self) -> str | None:
        """The reason given to :meth:`engage_estop`, or None."""
        return self._estop_reason

    @property
    def counters(self) -> dict[str, int]:
        """Interventions counted by kind since construction (every kind of
        :data:`INTERVENTIONS`, zeros included)."""
        return {k: int(self._counters.get(k, 0)) for k in INTERVENTIONS}

    @property
    def reference(self) -> tuple[np.ndarray | None, np.ndarray]:
        """``(q_ref, v_ref)``: what the next command's velocity and acceleration are measured
        against (copies; ``q_ref`` is None before the first finite measured state)."""
        return (None if self._q_ref is None else self._q_ref.copy()), self._v_ref.copy()

    def engage_estop(self, reason: str) -> None:
        """Engage the e-stop (latched until :meth:`reset_estop`): every period is a controlled
        stop and ``stop_skill``."""
        if self._estop_reason is None:
            logger.error("safety: e-stop engaged: %s", reason)
        self._estop_reason = str(reason) or "e-stop"

    def reset_estop(self) -> None:
        """Release the e-stop. Call :meth:`reset` with the measured state before resuming a skill."""
        if self._estop_reason is not None:
            logger.warning("safety: e-stop released (was: %s)", self._estop_reason)
        self._estop_reason = None

    def reset(self, q_measured: np.ndarray) -> None:
        """Start a new episode from the measured state: the reference becomes ``q_measured``
        clipped into the position margins, with zero velocity. Counters and the e-stop persist.

        Raises:
            ValueError: if ``q_measured`` is not ``n`` finite numbers.
        """
        q = self._vec(q_measured)
        if q is None or not np.all(np.isfinite(q)):
            raise ValueError(f"q_measured must be {self._n} finite numbers, got {q_measured!r}")
        self._anchor(q)

    # ------------------------------------------------------------------ filter
    def filter(self, q_target: np.ndarray, q_measured: np.ndarray, *, now: float,
               state_stamp: float) -> SafetyDecision:
        """Make one period's command safe.

        Args:
            q_target: ``(n,)`` joint positions the skill asks for, rad (any value is accepted).
            q_measured: ``(n,)`` latest measured joint positions, rad.
            now: current time, s (same clock as ``state_stamp``).
            state_stamp: time ``q_measured`` was measured, s.

        Returns:
            The :class:`SafetyDecision`; its command, if any, satisfies every limit.
        """
        kinds: list[str] = []
        stop = False
        qm = self._vec(q_measured)
        meas_ok = qm is not None and bool(np.all(np.isfinite(qm)))
        if self._estop_reason is not None:
            kinds.append("estop")
            stop = True
        try:
            age = float(now) - float(state_stamp)
        except (TypeError, ValueError):
            age = math.nan
        if not meas_ok or not (abs(age) <= self._max_age):
            kinds.append("stale_state")
            stop = True
        qt = self._vec(q_target)
        if qt is None or not np.all(np.isfinite(qt)):
            kinds.append("nan_input")
            stop = True
        hold = stop

        if not meas_ok:
            # Nowhere to measure a step from: publish nothing; the controller holds its last point.
            self._v_ref = np.zeros(self._n)
            return self._decide(None, True, stop, kinds)
        if self._q_ref is None:
            self._anchor(qm)
        qr, vr, dt = self._q_ref, self._v_ref, self.control_period

        # Feasible box: position margins, step vs measured, velocity (with braking look-ahead)
        # and acceleration vs the reference.
        d_hi = np.maximum(self._hi - qr, 0.0)
        d_lo = np.maximum(qr - self._lo, 0.0)
        a = self._amax
        vb_hi = a * (np.sqrt(dt * dt + 2.0 * d_hi / a) - dt)
        vb_lo = -a * (np.sqrt(dt * dt + 2.0 * d_lo / a) - dt)
        vel_lo = np.maximum(-self._vmax, vb_lo)
        vel_hi = np.minimum(self._vmax, vb_hi)
        acc_lo = vr - self._adt
        acc_hi = vr + self._adt
        step_lo = qm - self.limits.max_step
        step_hi = qm + self.limits.max_step
        box_lo = np.maximum(np.maximum(self._lo, step_lo),
                            qr + np.maximum(vel_lo, acc_lo) * dt)
        box_hi = np.minimum(np.minimum(self._hi, step_hi),
                            qr + np.minimum(vel_hi, acc_hi) * dt)
        if np.any(box_lo > box_hi + _EPS):
            kinds.append("infeasible")
            self._anchor(qm)
            return self._decide(None, True, stop, kinds)
        box_hi = np.maximum(box_hi, box_lo)

        q_stop = np.minimum(np.maximum(qr, box_lo), box_hi)
        if hold:
            cmd = q_stop
        else:
            cmd = np.minimum(np.maximum(qt, box_lo), box_hi)
            m = cmd != qt  # the joints that were changed, and the rules that changed them
            if np.any(m) and self.limits.step_scaling == "uniform":
                cmd = _scale_into_box(np.minimum(np.maximum(qt, self._lo), self._hi), qr,
                                      q_stop, box_lo, box_hi)
            if np.any(m):
                t = qt[m]
                for kind, lo, hi in (("clip_position", self._lo, self._hi),
                                     ("limit_step", step_lo, step_hi),
                                     ("limit_velocity", qr + vel_lo * dt, qr + vel_hi * dt),
                                     ("limit_acceleration", qr + acc_lo * dt, qr + acc_hi * dt)):
                    if np.any(t < lo[m]) or np.any(t > hi[m]):
                        kinds.append(kind)

        d_cmd = 0.0
        if self._fk is not None:
            allowed = self._d_ref + _EPS
            d_cmd = _outside(self._fk(cmd), self._ws_lo, self._ws_hi)
            if d_cmd > allowed:
                kinds.append("workspace")
                d_stop = _outside(self._fk(q_stop), self._ws_lo, self._ws_hi)
                if d_stop > allowed:
                    self._v_ref = np.zeros(self._n)
                    return self._decide(None, True, stop, kinds)
                s_ok, s_bad = 0.0, 1.0
                d_ok = d_stop
                for _ in range(_BISECT_ITERS):
                    s = 0.5 * (s_ok + s_bad)
                    d = _outside(self._fk(q_stop + s * (cmd - q_stop)), self._ws_lo, self._ws_hi)
                    if d <= allowed:
                        s_ok, d_ok = s, d
                    else:
                        s_bad = s
                cmd = q_stop + s_ok * (cmd - q_stop)
                d_cmd = d_ok
                hold = hold or s_ok == 0.0

        v = (cmd - qr) / dt
        self._q_ref = cmd.copy()
        self._v_ref = v.copy()
        self._d_ref = d_cmd
        return self._decide(cmd.copy(), hold, stop, kinds, v)

    # ------------------------------------------------------------------ helpers
    def _vec(self, q) -> np.ndarray | None:
        try:
            arr = np.array(q, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if arr.shape != (self._n,):
            return None
        return arr

    def _anchor(self, q: np.ndarray) -> None:
        self._q_ref = np.minimum(np.maximum(q, self._lo), self._hi)
        self._v_ref = np.zeros(self._n)
        self._d_ref = (0.0 if self._fk is None
                       else _outside(self._fk(self._q_ref.copy()), self._ws_lo, self._ws_hi))

    def _decide(self, cmd, hold, stop, kinds, v=None) -> SafetyDecision:
        for k in kinds:
            self._counters[k] += 1
            self._log(k)
        return SafetyDecision(q_command=cmd, velocity=None if cmd is None else v,
                              hold=bool(hold), stop_skill=bool(stop), interventions=tuple(kinds))

    def _log(self, kind: str) -> None:
        t = time.monotonic()
        last = self._last_log.get(kind)
        if last is not None and t - last < _LOG_INTERVAL_S:
            return
        self._last_log[kind] = t
        level = logging.WARNING if kind in _STOP_KINDS or kind == "workspace" else logging.INFO
        extra = f" ({self._estop_reason})" if kind == "estop" else ""
        logger.log(level, "safety: %s%s (count %d)", kind, extra, self._counters[kind])
