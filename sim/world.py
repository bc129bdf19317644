"""``SimTaskWorld``: a simulated robot inside a task, with predicates computed from MuJoCo contacts.

It implements the core :class:`robot_skills.execution.interfaces.TaskWorld` seam: the executor,
the planner and the benchmark runner ask it for the predicate state, the goal's progress and
success. On a real arm the same seam is :class:`robot_skills.perception.PoseTaskWorld`, which
computes the predicates from object poses alone; here they come from the simulator's contact list
and articulation state (:mod:`sim.predicates`), the reference the pose-based evaluator is
measured against.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from robot_skills.domain.predicates import Atom, SymbolicProblem
from robot_skills.perception.pose_predicates import PoseWorldModel
from robot_skills.robot import Observation
from robot_skills.tasks.bddl import BddlTask
from sim.perception_model import pose_world_model
from sim.predicates import evaluate_atoms, predicate_state
from sim.scene import SceneInfo
from sim.sim_robot import SimRobot


class SimTaskWorld:
    """A :class:`~sim.sim_robot.SimRobot` in its task, reporting the task's predicate state.

    Args:
        robot: the simulated robot (it owns the scene); or use :meth:`from_task`.

    Attributes:
        robot: the :class:`SimRobot` (the :class:`robot_skills.robot.Robot` the executor drives).
        task: the parsed task file.
    """

    def __init__(self, robot: SimRobot) -> None:
        self.robot = robot
        self.task: BddlTask = robot.task

    @classmethod
    def from_task(cls, task: BddlTask | str | Path, **robot_kwargs: Any) -> SimTaskWorld:
        """Build the robot for ``task`` (keyword arguments go to :class:`SimRobot`) and wrap it."""
        return cls(SimRobot(task, **robot_kwargs))

    # ----------------------------------------------------------- what the scripted experts read
    @property
    def model(self) -> mujoco.MjModel:
        """The compiled scene + robot model."""
        return self.robot.model

    @property
    def data(self) -> mujoco.MjData:
        """The simulation state."""
        return self.robot.data

    @property
    def scene(self) -> SceneInfo:
        """Objects, fixtures and regions of the built scene."""
        return self.robot.scene

    @functools.cached_property
    def world_model(self) -> PoseWorldModel:
        """The scene's geometry as a real arm's perception would give it
        (:func:`sim.perception_model.pose_world_model`, built on first use): what placements
        choose their release point from (:mod:`robot_skills.perception.placement`)."""
        return pose_world_model(self.robot.scene, self.robot.model)

    def sim_state(self) -> np.ndarray:
        """``(nq + nv,)`` float64 ``[qpos, qvel]``: the flat state robomimic stores as ``states``."""
        d = self.robot.data
        return np.concatenate([d.qpos, d.qvel]).astype(np.float64)

    def reset(self, seed: int | None = None) -> Observation:
        """Reset the robot and the scene (see :meth:`SimRobot.reset`)."""
        return self.robot.reset(seed)

    def render(self, camera: str = "agentview", width: int = 256, height: int = 256) -> np.ndarray:
        """An RGB frame for videos (see :meth:`SimRobot.render`)."""
        return self.robot.render(camera, width, height)

    def close(self) -> None:
        """Free the robot's renderers."""
        self.robot.close()

    # ----------------------------------------------------------------------- TaskWorld seam
    def predicate_state(self) -> frozenset[Atom]:
        """Every atom true now: the task file's predicates plus ``holding`` / ``handempty``."""
        r = self.robot
        return predicate_state(r.model, r.data, r.scene, gripper_geom_ids=r.gripper_geom_ids)

    def goal_progress(self) -> dict[Atom, bool]:
        """Each goal atom of the task and whether it holds now."""
        r = self.robot
        goal = list(self.task.goal)
        values = evaluate_atoms(r.model, r.data, r.scene, goal, gripper_geom_ids=r.gripper_geom_ids)
        return dict(zip(goal, values))

    def success(self) -> bool:
        """True when every goal atom holds (an empty goal is never a success)."""
        prog = self.goal_progress()
        return bool(prog) and all(prog.values())

    def symbolic_problem(self) -> SymbolicProblem:
        """Entities with affordance tags, the current predicate state and the goal atoms."""
        return SymbolicProblem(entities=self.scene.entity_tags(), state=self.predicate_state(),
                               goal=frozenset(self.task.goal))
