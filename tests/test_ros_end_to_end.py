"""The whole bridge over real DDS (``ros`` marker): learned skills (trained here through the CLI)
drive a libero_goal task through the sim twin to success, and every fault ends in a clear, logged
outcome -- joint states stop (the watchdog holds within N periods), an e-stop mid-skill, the stop
service, the twin killed and restarted, malformed requests, a skill below the required trust
tier -- while the twin never receives an unsafe command (it logs every command it receives; each is
checked against the limits the executor enforces).

The nodes are started exactly as ``rs-bridge`` / the launch files start them (the same modules and
``launch/params/*.yaml``); the success test runs ``rs-bridge`` itself. Each test process claims its
own ``ROS_DOMAIN_ID`` and confines discovery to localhost; every process started is stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from libero_paths import LIBERO_BDDL

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
GOAL_DIR = LIBERO_BDDL / "libero_goal"
TASK_NAME = "put_the_bowl_on_the_plate"
TASK = GOAL_DIR / f"{TASK_NAME}.bddl"
GOAL = ["(On akita_black_bowl_1 plate_1)"]
PARAMS = ROOT / "launch" / "params"
# A learned skill is not perfect: a failed attempt resets the scene (next seed) and retries. The
# library this file trains (30 demos, 4000 steps) succeeded in 19/30 single attempts through the
# twin over DDS (benchmarks/twin_success.py; 21/30 in SimRobot with rs-eval), so eight attempts
# all fail with probability ~(0.37)^8 < 1e-3; a failing attempt is cut at MAX_STEPS (successful
# ones took 70-390 steps).
ATTEMPTS = 8
MAX_STEPS = 400


@pytest.fixture(scope="module")
def ros_env():
    from hardware.processes import isolated_ros_env

    env = isolated_ros_env()
    env["MUJOCO_GL"] = env.get("MUJOCO_GL", "egl")
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture()
def fresh_env(ros_env, monkeypatch):
    """A second private domain, for a test that starts its own nodes beside the module's."""
    from hardware.processes import isolated_ros_env

    env = isolated_ros_env(base=ros_env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A skill library trained through the CLI on the one task (scripted-expert demos)."""
    run = tmp_path_factory.mktemp("run")
    common = [f"run_dir={run}", f"suite.path={GOAL_DIR}", f"+suite.tasks=[{TASK_NAME}]",
              "workers=1"]
    for verb, extra in (("collect", ["collect.mode=task", "collect.demos_per_task=30"]),
                        ("train", ["training.steps=4000", "training.held_in_calls=0"])):
        exe = shutil.which(f"rs-{verb}", path=str(Path(sys.executable).parent))
        assert exe, f"rs-{verb} is not installed"
        out = subprocess.run([exe, *common, *extra], capture_output=True, text=True,
                             timeout=900, cwd=run)
        assert out.returncode == 0, out.stderr[-3000:]
    lib = run / "skills"
    assert {"pick", "place_on"} <= {p.name for p in lib.iterdir()}
    return lib


class Stack:
    """The twin + executor processes of a setup, as ``rs-bridge`` builds them, plus a probe."""

    def __init__(self, tmp: Path, env: dict, library: Path, setup: str = "sim-twin",
                 executor_params: dict | None = None) -> None:
        from hardware.bridge import PARAMS_FILES, build_processes

        self.tmp, self.setup = tmp, setup
        self.command_log = tmp / "twin_commands.jsonl"
        over = {"executor": {"skill_library": str(library), "task": str(TASK),
                             **(executor_params or {})},
                "sim_twin": {"task": str(TASK), "command_log": str(self.command_log),
                             "pose_model_out": str(tmp / "pose_model.yaml")}}
        self.params_file = PARAMS / PARAMS_FILES[setup]
        self.procs = {p.name: p for p in build_processes(setup, self.params_file, over, env,
                                                         tmp)}
        self.twin = self.procs.get("sim_twin")
        self.executor = self.procs["executor"]
        self.probe = None

    def start_twin(self) -> None:
        self.twin.start()
        assert self.twin.wait_for_log("sim twin up", 90), self.twin.log()

    def start(self) -> Stack:
        from hardware.ros_probe import RosProbe

        self.probe = RosProbe()
        self.results = self.probe.subscribe_json("/robot_skills/result", latched=True)
        self.progress = self.probe.subscribe_json("/robot_skills/progress")
        self.predicates = self.probe.subscribe_json("/sim_twin/predicates")
        if self.twin is not None:
            self.start_twin()
        self.executor.start()
        assert self.executor.wait_for_log("executor up", 120), self.executor.log()[-3000:]
        assert self.probe.wait_for_subscriber("/robot_skills/task", 30)
        return self

    def stop(self) -> None:
        if self.probe is not None:
            self.probe.close()
        for p in reversed(list(self.procs.values())):
            p.stop()
        if self.twin is not None:
            self.twin.stop()

    # ------------------------------------------------------------------ helpers
    def request(self, req: dict | None = None, raw: str | None = None,
                timeout: float = 120.0) -> dict:
        """Send a task request; return its result (matched by id)."""
        return self.wait_result(self.send(req, raw=raw), (req or {}).get("id", ""), timeout)

    def send(self, req: dict | None, raw: str | None = None) -> int:
        k = len(self.results)
        self.probe.send_json("/robot_skills/task", req, raw=raw)
        return k

    def wait_result(self, k: int, rid: str, timeout: float = 120.0) -> dict:
        """The first result with id ``rid`` published after ``k`` results had been seen."""
        def found():
            return next((r for r in self.results[k:] if r["id"] == rid), None)

        assert self.probe.spin_until(lambda: found() is not None, timeout), \
            self.executor.log()[-3000:]
        return found()

    def wait_call(self, rid: str, timeout: float = 60.0) -> None:
        assert self.probe.spin_until(lambda: any(
            e.get("id") == rid and e["event"] == "step" and e["step"] >= 10
            for e in self.progress), timeout), self.executor.log()[-3000:]

    def commands(self) -> list[dict]:
        if not self.command_log.exists():
            return []
        return [json.loads(x) for x in self.command_log.read_text().splitlines() if x.strip()]


def _limits(stack: Stack):
    """The safety limits the executor enforces (its preset + parameter overrides)."""
    from hardware.config import load_bridge_config
    from hardware.executor_node import _PARAMS, bridge_overrides

    blocks = yaml.safe_load(stack.params_file.read_text())
    p = dict(_PARAMS)
    p.update(blocks["robot_skills_executor"]["ros__parameters"])
    return load_bridge_config(p["preset"] or None, **bridge_overrides(p))


def assert_twin_never_received_an_unsafe_command(stack: Stack) -> int:
    """Every arm command the twin logged is finite, inside the position margins, within the
    velocity limit, and a bounded step from the state the twin measured when it arrived."""
    cfg = _limits(stack)
    lim = cfg.safety_limits()
    lo, hi = lim.joint_lower + lim.position_margin, lim.joint_upper - lim.position_margin
    # the bridge checks the step against its own (at most stale_after_periods old) measurement;
    # the arm moves at most max_velocity in the meantime
    slack = lim.max_velocity * (lim.stale_after_periods + 2) * cfg.control_period
    arm = [c for c in stack.commands() if c["kind"] == "arm"]
    for c in arm:
        # The twin's trajectory controller drops a command whose only point is already in the past
        # when it gets to it (ros2_control's JTC does the same): on a CPU-starved machine the
        # twin's executor can be busy stepping physics for longer than the 25 ms look-ahead. That
        # is the controller refusing a stale command, not an unsafe one; every other refusal fails.
        assert c["accepted"] or c["why"] == "every point of the trajectory is in the past", c
        for pt in c["points"]:
            q, v = np.array(pt["pos"]), np.array(pt["vel"])
            assert np.all(np.isfinite(q)) and np.all(np.isfinite(v)), c
            assert np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9), c
            assert np.all(np.abs(v) <= lim.max_velocity + 1e-6), c
            assert np.all(np.abs(q - np.array(c["q_measured"])) <= lim.max_step + slack), c
    for c in stack.commands():
        if c["kind"] == "gripper":
            assert c["accepted"] and all(0.0 <= x <= 0.04 + 1e-9 for x in c["data"]), c
    return len(arm)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, ros_env, library):
    s = Stack(tmp_path_factory.mktemp("stack"), ros_env, library)
    try:
        yield s.start()
    finally:
        s.stop()
    assert not any(p.running() for p in s.procs.values())


# ------------------------------------------------------------------ faults


def test_malformed_task_requests_are_rejected_and_logged(stack: Stack) -> None:
    r = stack.request(raw="{not json")
    assert (r["status"], r["reason"]) == ("rejected", "malformed") and "not JSON" in r["message"]
    r = stack.request({"id": "m2", "goal": GOAL, "teleport": True})
    assert (r["id"], r["status"], r["reason"]) == ("m2", "rejected", "malformed")
    r = stack.request({"id": "m3", "goal": ["(On akita_black_bowl_1 the_moon)"]})
    assert (r["status"], r["reason"]) == ("rejected", "bad_request")
    assert "the_moon" in r["message"]
    r = stack.request({"id": "m4", "instruction": "make me a sandwich"})
    assert (r["status"], r["reason"]) == ("rejected", "bad_request")
    stack.probe.spin_for(0.5)
    log = stack.executor.log()
    assert "task 'm2': rejected (malformed)" in log and "task 'm3': rejected" in log
    assert not [c for c in stack.commands() if c["kind"] == "arm"]  # nothing moved


def test_estop_mid_skill_holds_the_arm_and_is_latched_until_released(stack: Stack) -> None:
    k = stack.send({"id": "e1", "goal": GOAL})
    stack.wait_call("e1")
    t_estop = time.time()
    stack.probe.estop(True)
    try:
        r = stack.wait_result(k, "e1")
        assert (r["status"], r["reason"]) == ("aborted", "estop"), r
        assert r["interventions"]["estop"] >= 1
        stack.probe.spin_for(0.5)
        period = _limits(stack).control_period
        arm = sorted((c for c in stack.commands() if c["kind"] == "arm"), key=lambda c: c["stamp"])
        moving = [np.abs(c["points"][0]["vel"]).max() > 0.05 for c in arm]
        holds = [c["stamp"] for c, m in zip(arm, moving) if not m and c["stamp"] > t_estop]
        assert holds, "no holding command after the e-stop"
        # Once the hold is on the wire nothing moves again, and the hold leaves within one control
        # period of the e-stop's arrival. Arrival = publish + DDS delivery + a callback slot on a
        # loaded executor: measured p99 delivery is ~1 ms (benchmarks/bridge_latency.py); the
        # 0.25 s allowance covers scheduling on a busy 2-core CI machine, not the filter.
        late = [c for c, m in zip(arm, moving) if m and c["stamp"] > holds[0]]
        assert not late, late[:2]
        assert holds[0] - t_estop <= period + 0.25, holds[0] - t_estop
        r = stack.request({"id": "e2", "goal": GOAL})
        assert (r["status"], r["reason"]) == ("aborted", "estop") and "e-stop engaged" in \
            r["message"]
        assert "e-stop engaged" in stack.executor.log()
    finally:
        res = stack.probe.call("/robot_skills/reset_estop")
    assert res.success and "released" in res.message
    assert_twin_never_received_an_unsafe_command(stack)


def test_joint_states_stopping_trips_the_watchdog_within_n_periods(stack: Stack) -> None:
    k = stack.send({"id": "w1", "goal": GOAL, "reset_scene": True})
    stack.wait_call("w1")
    assert stack.probe.set_bool("/sim_twin/pause_joint_states", True).success
    t_pause = time.time()
    r = stack.wait_result(k, "w1")
    try:
        assert (r["status"], r["reason"]) == ("aborted", "stale_state"), r
        assert "watchdog" in r["message"]
        cfg = _limits(stack)
        n = cfg.safety_limits().stale_after_periods
        moving = [c["recv"] for c in stack.commands() if c["kind"] == "arm"
                  and np.abs(c["points"][0]["vel"]).max() > 0.05]
        # the last moving command left within N + 2 periods of the last joint state
        assert max(moving) - t_pause <= (n + 2) * cfg.control_period + 0.05
    finally:
        assert stack.probe.set_bool("/sim_twin/pause_joint_states", False).success
    assert_twin_never_received_an_unsafe_command(stack)


def test_the_stop_service_halts_at_once(stack: Stack) -> None:
    k = stack.send({"id": "s1", "goal": GOAL, "reset_scene": True})
    stack.wait_call("s1")
    res = stack.probe.call("/robot_skills/stop")
    t_stop = time.time()
    assert res.success and res.message == "halted"
    r = stack.wait_result(k, "s1")
    assert (r["status"], r["reason"]) == ("stopped", "stop_requested"), r
    stack.probe.spin_for(0.5)
    period = _limits(stack).control_period
    late = [c for c in stack.commands() if c["kind"] == "arm" and c["stamp"] > t_stop + period
            and np.abs(c["points"][0]["vel"]).max() > 0.05]
    assert not late
    assert "stop requested: arm halted" in stack.executor.log()


def test_the_twin_killed_mid_skill_and_restarted(stack: Stack) -> None:
    from hardware.processes import NodeProcess

    k = stack.send({"id": "k1", "goal": GOAL, "reset_scene": True})
    stack.wait_call("k1")
    stack.twin.kill()  # SIGKILL: no goodbye
    r = stack.wait_result(k, "k1")
    assert (r["status"], r["reason"]) == ("aborted", "stale_state"), r
    assert stack.executor.running()  # the executor survives its arm vanishing
    r = stack.request({"id": "k2", "goal": GOAL}, timeout=60)
    assert r["status"] == "aborted" and "no fresh joint state" in r["message"]
    old = stack.twin
    stack.twin = NodeProcess(old.module, old.args, env=old.env,
                             log_path=stack.tmp / "twin_restarted.log", name="sim_twin")
    stack.start_twin()
    k = stack.send({"id": "k3", "goal": GOAL})
    stack.wait_call("k3")  # the bridge picked the new twin up and drives it
    stack.probe.call("/robot_skills/stop")
    r = stack.wait_result(k, "k3")
    assert r["status"] == "stopped"
    assert_twin_never_received_an_unsafe_command(stack)


# ------------------------------------------------------------------ trust tier


def test_a_skill_below_the_presets_trust_tier_is_refused_before_motion(
        tmp_path: Path, fresh_env, library) -> None:
    """The real-arm setup (preset panda: minimum tier ``supervised``) against the twin: the
    freshly trained skills are tier ``sim``; the plan is refused and the arm never moves."""
    from hardware.processes import NodeProcess, ros_args

    ros_env = fresh_env
    twin = NodeProcess("sim.ros_twin", ros_args(PARAMS / "sim_twin.yaml", {
        "task": str(TASK), "command_log": str(tmp_path / "cmd.jsonl"),
        "pose_model_out": str(tmp_path / "model.yaml")}), env=ros_env,
        log_path=tmp_path / "twin.log", name="sim_twin")
    s = Stack(tmp_path, ros_env, library, setup="real-arm",
              executor_params={"pose_model": str(tmp_path / "model.yaml")})
    s.command_log = tmp_path / "cmd.jsonl"
    try:
        twin.start()
        assert twin.wait_for_log("sim twin up", 90), twin.log()
        s.start()
        assert "not permitted: ['pick', 'place_on']" in s.executor.log()
        r = s.request({"id": "tt", "goal": GOAL})
        assert (r["status"], r["reason"]) == ("rejected", "trust_tier"), r
        assert "'pick' has trust tier 'sim', below the required 'supervised'" in r["message"]
        s.probe.spin_for(0.5)
        assert not [c for c in s.commands() if c["kind"] == "arm"]
        assert "rejected (trust_tier)" in s.executor.log()
    finally:
        s.stop()
        twin.stop()
    assert not twin.running() and not s.executor.running()


# ------------------------------------------------------------------ success


def test_learned_skills_reach_success_through_the_twin_over_dds(tmp_path: Path, fresh_env,
                                                                library) -> None:
    """``rs-bridge sim-twin`` (the plain-Python launcher) starts the twin and the executor; the
    learned pick and place_on skills put the bowl on the plate, judged by the executor from poses
    and by the twin from contacts."""
    from hardware.ros_probe import RosProbe

    ros_env = fresh_env
    log_dir = tmp_path / "logs"
    cmd_log = tmp_path / "commands.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hardware.bridge", "sim-twin", "--task", str(TASK),
         "--skill-library", str(library), "--log-dir", str(log_dir), "--command-log",
         str(cmd_log)], env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    probe = RosProbe()
    try:
        results = probe.subscribe_json("/robot_skills/result", latched=True)
        preds = probe.subscribe_json("/sim_twin/predicates")
        assert probe.wait_for_subscriber("/robot_skills/task", 180), proc.poll()
        outcomes = []
        for attempt in range(ATTEMPTS):
            k = len(results)
            probe.send_json("/robot_skills/task", {"id": f"a{attempt}", "goal": GOAL,
                                                   "max_steps": MAX_STEPS,
                                                   "reset_scene": attempt > 0})
            assert probe.spin_until(lambda: len(results) > k, 180)
            r = results[-1]
            outcomes.append((r["status"], r["reason"], (r["result"] or {}).get("steps")))
            if r["status"] == "succeeded":
                break
            assert r["status"] == "failed", r  # a skill failure, never a crash or a stop
        assert outcomes[-1][0] == "succeeded", outcomes
        assert r["result"]["plans"][0] == ["pick(akita_black_bowl_1)",
                                           "place_on(akita_black_bowl_1, plate_1)"]
        # the twin's contact-based predicates agree
        assert probe.spin_until(lambda: preds and preds[-1]["success"], 5), preds[-1:]
        print(f"\nattempts: {outcomes}; interventions: "
              f"{ {k: v for k, v in r['interventions'].items() if v} }")
    finally:
        probe.close()
        if proc.poll() is None:
            os.killpg(proc.pid, 2)  # SIGINT: rs-bridge stops its nodes
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
    assert proc.returncode == 0, proc.stdout.read().decode()[-2000:]
    s = Stack.__new__(Stack)
    s.command_log, s.params_file = cmd_log, PARAMS / "sim_twin.yaml"
    assert assert_twin_never_received_an_unsafe_command(s) > 50
