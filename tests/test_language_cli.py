"""``rs-ground`` and ``rs-run`` end to end (scripted experts in the simulator), and the grounding
benchmark's smoke run."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from libero_paths import LIBERO_BDDL

from robot_skills.cli_language import ground_main, ground_suite, run_main

TASK = LIBERO_BDDL / "libero_goal" / "put_the_bowl_on_the_plate.bddl"


def test_rs_ground_prints_mismatches_then_the_accuracy_last(capsys):
    res = ground_suite("libero_goal")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("accuracy: ")
    m = re.match(r"accuracy: (\d+)/(\d+)", out[-1])
    assert (int(m.group(1)), int(m.group(2))) == (res["exact"], res["n"]) and res["n"] == 10
    assert res["exact"] + len(res["mismatches"]) == 10
    assert sum(line.startswith("MISMATCH") for line in out) == len(res["mismatches"])
    assert res["paraphrases"]["n"] >= 30
    with pytest.raises(SystemExit, match="below"):
        ground_main(["suite=libero_goal", "paraphrases=false", "min_accuracy=1.01"])
    with pytest.raises(SystemExit, match="unknown arguments"):
        ground_main(["libero_goal"])


def test_rs_run_carries_out_a_paraphrase_with_the_experts_and_writes_a_video(tmp_path, capsys):
    video = tmp_path / "run.mp4"
    run_main(["please put the dark bowl onto the dish", f"task={TASK}", "eval.policy=expert",
              f"run_dir={tmp_path}", f"video={video}"])
    out = capsys.readouterr().out
    assert "plan 0: [pick(akita_black_bowl_1), place_on(akita_black_bowl_1, plate_1)]" in out
    assert "outcome: SUCCESS" in out and "the task file's goal holds" in out
    assert video.is_file() and video.stat().st_size > 0


def test_rs_run_judges_the_instruction_not_the_file(tmp_path, capsys):
    run_main(["switch on the stove", f"task={TASK}", "eval.policy=expert",
              f"run_dir={tmp_path}", f"video={tmp_path / 'v.mp4'}"])
    out = capsys.readouterr().out
    assert "turn_on(flat_stove_1)" in out
    assert "outcome: SUCCESS" in out and "the task file's goal does not hold" in out


def test_rs_run_errors_name_the_problem(tmp_path):
    with pytest.raises(SystemExit, match="banana"):
        run_main(["put the banana on the plate", f"task={TASK}", "eval.policy=expert",
                  f"run_dir={tmp_path}"])
    with pytest.raises(SystemExit, match="usage"):
        run_main(["put the bowl on the plate"])
    with pytest.raises(SystemExit, match="not found"):
        run_main(["put the bowl on the plate", f"task={tmp_path / 'nope.bddl'}"])


def test_grounding_benchmark_smoke(capsys):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "grounding.py"
    spec = importlib.util.spec_from_file_location("grounding_bench", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"encoder load: [\d.]+ s", out)
    row = next(line for line in out.splitlines() if line.startswith("1 "))
    files, failed, p50, p99 = row.split()[1:5]
    assert int(files) == 10 and int(failed) <= 1 and float(p99) >= float(p50) > 0
