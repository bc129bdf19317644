"""A gymnasium environment over one LIBERO BDDL task file, wrapping :class:`sim.sim_robot.SimRobot`.

Registered as ``"robot_skills/LiberoTask-v0"``::

    env = gymnasium.make("robot_skills/LiberoTask-v0", bddl_path=".../put_the_bowl_on_the_plate.bddl")

Observation (``gymnasium.spaces.Dict``, all in the robot base frame, float32 unless noted):

* ``joint_pos`` (7,) rad, ``joint_vel`` (7,) rad/s, ``ee_pos`` (3,) m, ``ee_quat`` (4,) ``w,x,y,z``,
  ``gripper_width`` (1,) m;
* ``<entity>_pose`` (7,) ``[x, y, z, qw, qx, qy, qz]`` for every object, fixture and region;
* ``<camera>_rgb`` (H, W, 3) uint8 and, with ``depth=True``, ``<camera>_depth`` (H, W, 1) float32 m,
  for each requested camera.

Action: ``Box(-1, 1, (7,))``, the robosuite/LIBERO OSC convention: ``a[0:3] * max_delta_pos`` is the
end-effector translation per step (m), ``a[3:6] * max_delta_rot`` the axis-angle rotation per step
(rad), both in the base frame (robosuite's OSC_POSE maps [-1, 1] to +-0.05 m and +-0.5 rad the
same way, :class:`robot_skills.robot.ActionLimits`); ``a[6]`` is the gripper (-1 open, +1 close).
Out-of-range actions are clipped.

Reward: 1.0 on the step the goal holds (sparse), else 0.0; ``terminated`` on success, ``truncated``
after ``max_episode_steps``. ``info``: ``success`` (bool), ``goal_progress`` (BDDL atom string ->
bool, via :func:`robot_skills.domain.predicates.format_atom`) and ``predicates`` (sorted list of
the true atoms as BDDL strings; pass ``info_predicates=False`` to skip computing them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robot_skills.domain.predicates import format_atom
from robot_skills.robot import Action, ActionLimits, EpisodeInvalidError
from sim.sim_robot import OBS_PROPRIO_DIM, SimRobot
from sim.world import SimTaskWorld

ENV_ID = "robot_skills/LiberoTask-v0"
_BIG = np.float32(1e3)


class LiberoTaskEnv(gym.Env):
    """Gymnasium env over one task file (see the module docstring for spaces and scaling).

    Args:
        bddl_path: the task file.
        cameras: camera names to render each step (e.g. ``("agentview", "panda/wrist_cam")``).
        image_size: ``(height, width)`` in pixels.
        depth: also return depth images.
        max_episode_steps: truncation horizon in control steps (20 Hz).
        region_shift / region_scale: placement-region perturbation, see :class:`SimRobot`.
        info_predicates: compute ``info["predicates"]`` (the full predicate state) every step.
        render_mode: ``"rgb_array"`` or None; :meth:`render` returns the first camera (or
            ``agentview``) at ``render_size``.

    Raises:
        ValueError: unknown render mode or camera; errors of the scene builder for bad task files.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        bddl_path: str | Path,
        *,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (128, 128),
        depth: bool = False,
        max_episode_steps: int = 300,
        region_shift: tuple[float, float] = (0.0, 0.0),
        region_scale: float = 1.0,
        info_predicates: bool = True,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (256, 256),
        action_limits: ActionLimits | None = None,
    ) -> None:
        super().__init__()
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be > 0, got {max_episode_steps}")
        lim = action_limits if action_limits is not None else ActionLimits()
        self.robot = SimRobot(bddl_path, cameras=cameras, image_size=image_size, depth=depth,
                              region_shift=region_shift, region_scale=region_scale,
                              action_limits=lim)
        self.world = SimTaskWorld(self.robot)
        self.render_mode = render_mode
        self.render_size = tuple(int(v) for v in render_size)
        self.max_episode_steps = int(max_episode_steps)
        self.info_predicates = bool(info_predicates)
        self.cameras = tuple(cameras)
        self.depth = bool(depth)
        self._scale = np.array([lim.max_delta_pos] * 3 + [lim.max_delta_rot] * 3, dtype=np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        h, w = self.robot.image_size
        jl = self.robot.joint_limits.astype(np.float32)
        self._joint_limits32 = jl
        obs: dict[str, spaces.Space] = {
            "joint_pos": spaces.Box(jl[:, 0], jl[:, 1], dtype=np.float32),
            "joint_vel": spaces.Box(-_BIG, _BIG, shape=(7,), dtype=np.float32),
            "ee_pos": spaces.Box(-_BIG, _BIG, shape=(3,), dtype=np.float32),
            "ee_quat": spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32),
            "gripper_width": spaces.Box(0.0, 0.1, shape=(1,), dtype=np.float32),
        }
        self._pose_keys = [f"{name}_pose" for name in self.robot.entity_names]
        for key in self._pose_keys:
            obs[key] = spaces.Box(-_BIG, _BIG, shape=(7,), dtype=np.float32)
        for cam in self.cameras:
            obs[f"{cam}_rgb"] = spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8)
            if self.depth:
                obs[f"{cam}_depth"] = spaces.Box(0.0, _BIG, shape=(h, w, 1), dtype=np.float32)
        self.observation_space = spaces.Dict(obs)
        self._steps = 0
        self._goal = list(self.robot.task.goal)
        self._goal_str = [format_atom(a) for a in self._goal]

    # ------------------------------------------------------------------ helpers
    def _obs(self) -> dict[str, np.ndarray]:
        # One float32 conversion of the robot's flat observation, then views into it.
        s = self.robot.observation_array().astype(np.float32)
        jl = self._joint_limits32
        out = {
            "joint_pos": np.clip(s[7:14], jl[:, 0], jl[:, 1]),
            "joint_vel": np.clip(s[14:21], -_BIG, _BIG),
            "ee_pos": s[0:3],
            "ee_quat": np.clip(s[3:7], -1.0, 1.0),
            "gripper_width": np.clip(s[21:22] + s[22:23], 0.0, 0.1),
        }
        out.update(zip(self._pose_keys, s[OBS_PROPRIO_DIM:].reshape(-1, 7)))
        if self.cameras:
            images = self.robot.images
            for cam in self.cameras:
                out[f"{cam}_rgb"] = images[cam]
                if self.depth:
                    out[f"{cam}_depth"] = images[cam + "_depth"][..., None]
        return out

    def _info(self) -> dict[str, Any]:
        prog = self.world.goal_progress()
        values = [prog[a] for a in self._goal]
        info: dict[str, Any] = {
            "success": bool(values) and all(values),
            "goal_progress": dict(zip(self._goal_str, values)),
        }
        if self.info_predicates:
            info["predicates"] = sorted(format_atom(a) for a in self.world.predicate_state())
        return info

    def action_to_robot(self, action: np.ndarray) -> Action:
        """Scale a normalised ``(7,)`` action in ``[-1, 1]`` to a robot :class:`Action` (clipped).

        Raises:
            ValueError: wrong shape or NaN/inf.
        """
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (7,):
            raise ValueError(f"action must have shape (7,), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action contains NaN/inf: {a}")
        a = np.clip(a, -1.0, 1.0)
        d = a[:6] * self._scale
        return Action(d[:3], d[3:6], float(a[6]))

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset to a seeded initial state; returns ``(obs, info)``."""
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self.robot.reset(seed)
        self._steps = 0
        return self._obs(), self._info()

    def step(self, action):
        """One 20 Hz control step; returns ``(obs, reward, terminated, truncated, info)``.

        When the simulation goes unstable (:class:`~robot_skills.robot.EpisodeInvalidError`),
        the step is truncated with ``info["episode_invalid"]`` naming the cause, reward 0, and
        the env must be reset (vectorised envs reset it themselves).
        """
        try:
            self.robot.act(self.action_to_robot(action))
        except EpisodeInvalidError as e:
            self._steps += 1
            info = {"success": False, "goal_progress": {}, "episode_invalid": str(e)}
            return self._obs(), 0.0, False, True, info
        self._steps += 1
        info = self._info()
        success = info["success"]
        reward = 1.0 if success else 0.0
        truncated = (not success) and self._steps >= self.max_episode_steps
        return self._obs(), reward, bool(success), bool(truncated), info

    def render(self):
        """``(H, W, 3)`` uint8 frame of the first requested camera (else ``agentview``)."""
        if self.render_mode != "rgb_array":
            return None
        cam = self.cameras[0] if self.cameras else "agentview"
        h, w = self.render_size
        return self.robot.render(cam, width=w, height=h)

    def close(self):
        """Release renderers."""
        self.robot.close()


def register() -> None:
    """Register :data:`ENV_ID` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="sim.env:LiberoTaskEnv")


register()
