"""The benchmark scripts run and print their table (figures themselves are not asserted here)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "env_speed.py"


def test_env_speed_prints_every_configuration(capsys):
    spec = importlib.util.spec_from_file_location("env_speed", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main([str(TASK), "--steps", "5", "--repeats", "1"])
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(.+?)\s+([\d.]+)\s+([\d.]+)$", line)
        if m:
            rows[m.group(1).strip()] = (float(m.group(2)), float(m.group(3)))
    assert len(rows) == 5, out
    bound = next(v for k, v in rows.items() if k.startswith("raw mj_step"))
    assert bound[1] == pytest.approx(1.0)
    assert all(rate > 0 for rate, _ in rows.values())


@pytest.mark.slow
def test_libero_expert_eval_benchmark_prints_episodes_per_second(capsys, tmp_path):
    script = SCRIPT.parent / "libero_expert_eval.py"
    spec = importlib.util.spec_from_file_location("libero_expert_eval", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--episodes", "1", "--suites", "libero_10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("libero_10"))
    tasks, episodes, success, wall, rate = row.split()[1:]
    assert (int(tasks), int(episodes)) == (10, 10)
    assert float(rate) == pytest.approx(10 / float(wall), rel=0.02)
    assert (tmp_path / "libero_10" / "eval_expert" / "results.json").is_file()


def test_plan_libero_smoke_plans_every_file_and_fails_fast(capsys):
    script = SCRIPT.parent / "plan_libero.py"
    spec = importlib.util.spec_from_file_location("plan_libero", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\w[\w ]*?)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            rows[m.group(1)] = [float(x) for x in m.groups()[1:]]
    for suite in ("libero_goal", "libero_spatial", "libero_object", "libero_10", "libero_90"):
        files, planned, p50, p99, mx = rows[suite][:5]
        assert files == planned == 2 and 0 < p50 <= p99 <= mx, out
    assert rows["all"][:2] == [10, 10], out
    for case in ("static", "no_close"):  # every fail-fast case rejected with zero expansions
        assert rows[case][0] == rows[case][1] > 0, out
