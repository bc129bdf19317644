"""The launch files, their parameter files, ``rs-bridge`` and the ROS 2 package agree (default tier,
no ``launch``/``launch_ros``/colcon needed): every node a launch file names is an executable the
package installs, whose module exists and whose parameters file declares only parameters the node
knows; ``rs-bridge`` starts the same executables with the same files; ``package.xml`` is a format-3
ament_python package; ``setup.py`` installs what the launch files need. That the nodes *start*
from these files is shown over DDS by ``tests/test_ros_end_to_end.py`` (through ``rs-bridge``)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from hardware import bridge

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))
PACKAGE = "robot_skills_bridge"


def _consts(tree: ast.Module) -> dict[str, str]:
    out = {}
    for n in tree.body:
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant):
            for t in n.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = n.value.value
    return out


def _launched_nodes(path: Path) -> tuple[dict[str, str], list[dict]]:
    """Module constants and every ``Node(...)`` call's literal keyword arguments."""
    tree = ast.parse(path.read_text())
    consts = _consts(tree)
    nodes = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Node":
            kw = {}
            for k in n.keywords:
                v = k.value
                if isinstance(v, ast.Constant):
                    kw[k.arg] = v.value
                elif isinstance(v, ast.Name) and v.id in consts:
                    kw[k.arg] = consts[v.id]
                elif k.arg == "parameters" and isinstance(v, ast.List):
                    kw[k.arg] = [ast.unparse(e) for e in v.elts]
            nodes.append(kw)
    return consts, nodes


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((LAUNCH / "setup.py").read_text())
    for n in ast.walk(tree):
        if isinstance(n, ast.Dict):
            for k, v in zip(n.keys, n.values):
                if isinstance(k, ast.Constant) and k.value == "console_scripts":
                    return dict((s.split("=")[0].strip(), s.split("=")[1].strip())
                                for s in ast.literal_eval(v))
    raise AssertionError("no console_scripts in launch/setup.py")


def _node_params(module: str) -> set[str]:
    return set(importlib.import_module(module)._PARAMS)


def test_there_are_the_two_launch_files() -> None:
    assert [p.name for p in LAUNCH_FILES] == ["real_arm.launch.py", "sim_twin.launch.py"]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launched_node_exists_and_its_parameters_are_declared(path: Path) -> None:
    consts, nodes = _launched_nodes(path)
    assert consts["PACKAGE"] == PACKAGE and nodes
    scripts = _console_scripts()
    params_file = LAUNCH / "params" / consts["PARAMS"]
    blocks = yaml.safe_load(params_file.read_text())
    for node in nodes:
        assert node["package"] == PACKAGE
        exe = node["executable"]
        target = scripts[exe]  # the package installs the executable
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target
        spec = bridge.NODES[exe]  # rs-bridge starts the same module under the same name
        assert spec.module == module and spec.node_name == node["name"]
        assert node["parameters"][0] == "params"  # the shared parameter file comes first
        declared = _node_params(module)
        params = blocks[node["name"]]["ros__parameters"]
        assert set(params) <= declared, set(params) - declared
        # every launch argument passed as a parameter override is a declared parameter
        for extra in node["parameters"][1:]:
            keys = ast.parse(extra).body[0].value.keys  # {"task": task, ...}
            assert {k.value for k in keys} <= declared


@pytest.mark.parametrize("setup", sorted(bridge.SETUPS))
def test_rs_bridge_starts_what_the_launch_file_starts(setup: str, tmp_path: Path) -> None:
    path = LAUNCH / f"{setup.replace('-', '_')}.launch.py"
    consts, nodes = _launched_nodes(path)
    assert tuple(n["executable"] for n in nodes) == bridge.SETUPS[setup]
    assert bridge.PARAMS_FILES[setup] == consts["PARAMS"]
    lib = tmp_path / "lib"
    args = [setup, "--skill-library", str(lib), "--dry-run"]
    args += ["--task", str(tmp_path / "t.bddl")] if setup == "sim-twin" else ["--preset", "fr3"]
    out = subprocess.run([sys.executable, "-m", "hardware.bridge", *args], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [ln.split()[2] for ln in lines] == [bridge.NODES[e].module for e in
                                             bridge.SETUPS[setup]]
    for ln in lines:
        assert f"--params-file {LAUNCH / 'params' / consts['PARAMS']}" in ln
        assert f"skill_library:={lib}" in ln or "sim.ros_twin" in ln


def test_the_twin_speaks_the_topics_of_the_panda_preset() -> None:
    from hardware.config import load_bridge_config

    twin = yaml.safe_load((LAUNCH / "params" / "sim_twin.yaml").read_text())
    t = twin["sim_twin"]["ros__parameters"]
    ex = twin["robot_skills_executor"]["ros__parameters"]
    cfg = load_bridge_config(ex["preset"])
    assert tuple(t["joint_names"]) == cfg.wire_joint_names()
    assert t["joint_states_topic"] == cfg.joint_states_topic
    assert t["trajectory_topic"] == cfg.trajectory_topic
    assert t["gripper_interface"] == cfg.gripper.kind and t["gripper_topic"] == cfg.gripper.topic
    assert tuple(t["finger_joint_names"]) == cfg.gripper.joints
    assert t["object_pose_topic"] == cfg.object_pose_topic and t["frame_id"] == cfg.frame()
    assert ex["control_hz"] == cfg.control_hz  # the skills' rate
    assert t["control_hz"] >= 5 * cfg.control_hz  # fresh states for every skill step
    assert t["pose_model_topic"] == ex["pose_model_topic"]
    assert ex["min_trust_tier"] == "sim"  # the twin accepts any tier


def test_package_xml_is_a_format_3_ament_python_package() -> None:
    root = ET.parse(LAUNCH / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == PACKAGE
    assert root.find("export/build_type").text == "ament_python"
    assert root.findtext("buildtool_depend") == "ament_python"
    deps = {e.text for e in root if e.tag in ("exec_depend", "depend")}
    assert {"rclpy", "std_msgs", "std_srvs", "sensor_msgs", "geometry_msgs", "trajectory_msgs",
            "builtin_interfaces", "launch", "launch_ros"} <= deps
    assert (LAUNCH / "resource" / PACKAGE).is_file()
    assert (LAUNCH / "setup.cfg").read_text().count(f"$base/lib/{PACKAGE}") == 2


def test_setup_py_installs_nodes_launch_files_params_and_presets(tmp_path: Path) -> None:
    """What ``colcon build`` runs for an ament_python package, into a temporary prefix."""
    b, inst = tmp_path / "build", tmp_path / "install"
    out = subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path),
         "build", "--build-base", str(b), "install", "--prefix", str(inst),
         "--single-version-externally-managed", "--record", str(tmp_path / "files.txt")],
        cwd=LAUNCH, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    share = inst / "share" / PACKAGE
    assert (inst / "share/ament_index/resource_index/packages" / PACKAGE).is_file()
    assert (share / "package.xml").is_file()
    assert sorted(p.name for p in (share / "launch").iterdir()) == [p.name for p in LAUNCH_FILES]
    assert {p.name for p in (share / "params").iterdir()} == {"sim_twin.yaml", "real_arm.yaml"}
    assert {"panda.yaml", "fr3.yaml", "ur5e.yaml", "xarm7.yaml"} <= {
        p.name for p in (share / "configs" / "hardware").iterdir()}
    assert (share / "configs" / "planner" / "symbolic.yaml").is_file()
    assert {p.name for p in (inst / "lib" / PACKAGE).iterdir()} >= {"sim_twin", "executor",
                                                                     "rs_bridge"}
    site = next((inst / "lib").glob("python3*/site-packages"))
    for pkg in ("robot_skills", "sim", "hardware"):
        assert (site / pkg / "__init__.py").is_file()
    assert not list(LAUNCH.glob("*.egg-info")) and not (LAUNCH / "build").exists()
