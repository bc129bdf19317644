"""``rs-bridge``: start the bridge's nodes without ROS 2's ``launch`` (not installable from PyPI).

It starts exactly what ``launch/sim_twin.launch.py`` and ``launch/real_arm.launch.py`` start --
the same executables (:data:`NODES`), with the same parameter files (``launch/params/*.yaml``,
ROS 2 parameter-file format) -- each node in its own process, with the flags' values as parameter
overrides, and stops them all (SIGINT, then SIGTERM, then SIGKILL) when one exits or on Ctrl-C::

    rs-bridge sim-twin --task put_the_bowl_on_the_plate.bddl --skill-library outputs/.../skills
    rs-bridge real-arm --preset fr3 --skill-library skills/ --planner symbolic
    rs-bridge sim-twin --task t.bddl --skill-library skills/ --dry-run   # print the commands

Setups (:data:`SETUPS`): ``sim-twin`` = the MuJoCo twin (``sim.ros_twin``) + the executor node
(which holds the bridge, ``hardware.ros2_robot.Ros2Robot``, in-process: a skill's actions go
through IK and the safety filter in the same process, then over DDS); ``real-arm`` = the executor
node alone, against the arm's ros2_control drivers. The twin is started by module name, as a
launch file starts an executable: ``hardware`` never imports ``sim``.

Exit status: 0 after Ctrl-C/SIGTERM, the failing node's exit status (or 1) when a node exits on
its own, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware.processes import NodeProcess, ros_args


@dataclass(frozen=True)
class NodeSpec:
    """One node of a setup.

    Attributes:
        executable: the console script ``ros2 run robot_skills_bridge <executable>`` runs (see
            ``launch/setup.py``), as the launch files name it.
        module: the Python module whose ``main()`` it runs (``python -m module``).
        node_name: the node's name (the key of its block in the parameter file).
    """

    executable: str
    module: str
    node_name: str


NODES: dict[str, NodeSpec] = {
    "sim_twin": NodeSpec("sim_twin", "sim.ros_twin", "sim_twin"),
    "executor": NodeSpec("executor", "hardware.executor_node", "robot_skills_executor"),
}
"""Every node the launch files and ``rs-bridge`` start, by executable name."""

SETUPS: dict[str, tuple[str, ...]] = {
    "sim-twin": ("sim_twin", "executor"),
    "real-arm": ("executor",),
}
"""Setup name -> the executables it starts (in start order)."""

PARAMS_FILES: dict[str, str] = {"sim-twin": "sim_twin.yaml", "real-arm": "real_arm.yaml"}
"""Setup name -> its parameter file in :func:`params_dir`."""


def params_dir() -> Path:
    """The launch parameter files: ``$ROBOT_SKILLS_LAUNCH_PARAMS``, else this checkout's
    ``launch/params``, else ``share/robot_skills_bridge/params`` of a colcon install."""
    env = os.environ.get("ROBOT_SKILLS_LAUNCH_PARAMS")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[1] / "launch" / "params"
    if repo.is_dir():
        return repo
    try:
        from ament_index_python.packages import get_package_share_directory

        from hardware.config import PACKAGE

        return Path(get_package_share_directory(PACKAGE)) / "params"
    except (ImportError, LookupError, ValueError):
        return repo


def node_overrides(setup: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per-node parameter overrides the flags ask for (unset flags left out)."""
    ex: dict[str, Any] = {}
    twin: dict[str, Any] = {}
    if args.skill_library:
        ex["skill_library"] = str(Path(args.skill_library).resolve())
    if args.planner:
        ex["planner"] = args.planner
    if getattr(args, "preset", None):
        ex["preset"] = args.preset
    if getattr(args, "task", None):
        task = str(Path(args.task).resolve())
        ex["task"] = task
        twin["task"] = task
    if getattr(args, "seed", None) is not None:
        twin["seed"] = int(args.seed)
    if getattr(args, "command_log", None):
        twin["command_log"] = str(Path(args.command_log).resolve())
    out = {"executor": ex}
    if setup == "sim-twin":
        out["sim_twin"] = twin
    return out


def build_processes(setup: str, params_file: str | os.PathLike,
                    overrides: Mapping[str, Mapping[str, Any]], env: Mapping[str, str],
                    log_dir: str | os.PathLike | None = None) -> list[NodeProcess]:
    """The (unstarted) processes of ``setup``: each node's module with ``--ros-args
    --params-file <params_file>`` and ``-p`` overrides.

    Raises:
        ValueError: unknown setup.
    """
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; known: {sorted(SETUPS)}")
    procs = []
    for exe in SETUPS[setup]:
        spec = NODES[exe]
        log = Path(log_dir) / f"{exe}.log" if log_dir else None
        procs.append(NodeProcess(spec.module, ros_args(params_file, overrides.get(exe, {})),
                                 env=env, log_path=log, name=exe))
    return procs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rs-bridge", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="setup", required=True)
    for name in SETUPS:
        s = sub.add_parser(name, help=f"start {' + '.join(SETUPS[name])}")
        s.add_argument("--params", help=f"parameter file (default launch/params/"
                                        f"{PARAMS_FILES[name]})")
        s.add_argument("--skill-library", required=True, help="skill library directory")
        s.add_argument("--planner", default=None, help="planner config name or class path")
        s.add_argument("--log-dir", default=None, help="write each node's output here "
                                                        "(default: the terminal)")
        s.add_argument("--dry-run", action="store_true", help="print the commands and exit")
        if name == "sim-twin":
            s.add_argument("--task", required=True, help="BDDL task file the twin simulates")
            s.add_argument("--seed", type=int, default=None, help="scene seed")
            s.add_argument("--command-log", default=None,
                           help="JSON-lines log of every command the twin receives")
        else:
            s.add_argument("--preset", required=True, help="hardware preset (configs/hardware)")
            s.add_argument("--task", default=None, help="BDDL task file (goal, language)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rs-bridge`` (see the module docstring)."""
    args = _parser().parse_args(argv)
    params = Path(args.params) if args.params else params_dir() / PARAMS_FILES[args.setup]
    if not params.is_file():
        print(f"rs-bridge: no parameter file {params}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    procs = build_processes(args.setup, params.resolve(), node_overrides(args.setup, args), env,
                            args.log_dir)
    if args.dry_run:
        for pr in procs:
            print(" ".join([sys.executable, "-m", pr.module, *pr.args]))
        return 0
    if args.log_dir:
        Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    else:  # to the terminal
        for pr in procs:
            pr.log_path = Path("/dev/stdout")
    stopping = {"flag": False}

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        stopping["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        for pr in procs:
            pr.start()
            print(f"rs-bridge: started {pr.name} (pid {pr.pid})", file=sys.stderr)
        while not stopping["flag"]:
            dead = [pr for pr in procs if not pr.running()]
            if dead:
                rc = dead[0].proc.returncode if dead[0].proc else 1
                print(f"rs-bridge: {dead[0].name} exited with status {rc}; stopping the others",
                      file=sys.stderr)
                code = rc or 1
                break
            time.sleep(0.2)
    finally:
        for pr in reversed(procs):
            pr.stop()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
