"""Crash safety: a job killed at any instant loses at most the work in flight, and a rerun
finishes with the result of a run that was never killed.

* ``rs-collect`` records each finished episode atomically; a rerun resumes, and its
  ``demos.hdf5`` is byte-identical to an unkilled run's.
* ``rs-train`` builds the new library beside the old one and swaps it in atomically: until the
  swap the old library loads completely (``SkillLibrary.verify_all()`` all ``ok``), after it the
  new one does; a rerun resumes from the checkpoints and gives an unkilled run's weights.
* Temporary names a killed writer leaves are cleaned at the next start; an unwritable run
  directory is reported before any episode runs.

Processes are killed with SIGKILL (no cleanup handler runs) at seeded random points.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_skills.data.collect import NoiseConfig, collect_demos, collect_work_dir
from robot_skills.data.hdf5 import DemoReader
from robot_skills.skills.library import SkillLibrary
from robot_skills.tasks.suites import resolve_suite
from robot_skills.utils.atomic import (
    TEMP_NAME_RE,
    check_writable,
    clean_stale_temps,
    exclusive_lock,
)

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's bin: rs-collect, rs-train
SUITE = resolve_suite("libero_goal")
TASK = ["+suite.tasks=[put_the_bowl_on_the_plate]", f"suite.path={SUITE}"]
COLLECT = [*TASK, "collect.mode=task", "collect.demos_per_task=4", "workers=1"]
TRAIN = [*TASK, "training.held_in_calls=0", "training.steps=60", "training.lora_steps=20",
         "training.checkpoint_every=20",
         "policy.hidden=64", "policy.layers=2", "training.device=cpu"]


# ----------------------------------------------------------------------------------- helpers
def _env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _start(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:  # own session: the kill reaches any child process too
        return subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> str:
    r = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{argv} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def _rs(verb: str, run_dir: Path, *overrides: str) -> list[str]:
    return [str(BIN / f"rs-{verb}"), *overrides, f"run_dir={run_dir}"]


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], delay_s: float,
               timeout_s: float = 120) -> bool:
    """SIGKILL ``proc``'s session ``delay_s`` after ``ready()`` first holds. Returns False when the
    process ended on its own first (then nothing is killed)."""
    t0 = time.monotonic()
    while not ready():
        if proc.poll() is not None:
            return False
        if time.monotonic() - t0 > timeout_s:
            proc.kill()
            raise AssertionError("kill point never reached")
        time.sleep(0.002)
    time.sleep(delay_s)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _records(run_dir: Path) -> set[str]:
    return {p.name for p in collect_work_dir(run_dir / "demos.hdf5").glob("*.hdf5")}


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if TEMP_NAME_RE.match(p.name))


def _assert_same_demos(a: Path, b: Path) -> None:
    """Same demos in the same order, every array and attribute equal; byte-identical files when
    the same code version wrote both (a commit between the two runs changes that attribute)."""
    with DemoReader(a) as ra, DemoReader(b) as rb:
        assert ra.demos == rb.demos
        attrs_a, attrs_b = ra.attrs, rb.attrs
        same_version = attrs_a.pop("robot_skills_version") == attrs_b.pop("robot_skills_version")
        assert attrs_a == attrs_b
        for n in ra.demos:
            da, db = ra.load(n), rb.load(n)
            assert da.attrs == db.attrs and da.segments == db.segments
            np.testing.assert_array_equal(da.actions, db.actions)
            np.testing.assert_array_equal(da.states, db.states)
            for k in da.obs:
                np.testing.assert_array_equal(da.obs[k], db.obs[k])
            assert da.object_poses.keys() == db.object_poses.keys()
            for k in da.object_poses:
                np.testing.assert_array_equal(da.object_poses[k], db.object_poses[k])
    if same_version:
        assert _sha(a) == _sha(b)


def _library_digest(lib: Path) -> dict[str, str]:
    """A hash of every tensor and statistics file of a library, per file. Tensors are hashed by
    name and value, not file bytes: safetensors writes its metadata map in an arbitrary order;
    provenance (``skill.yaml``) is left out: a resumed run records ``resumed_from`` and its own
    wall time."""
    from safetensors.torch import load_file

    out = {}
    for p in sorted(lib.rglob("*")):
        if p.suffix == ".safetensors":
            h = hashlib.sha256()
            for k, v in sorted(load_file(str(p)).items()):
                h.update(k.encode() + str(v.dtype).encode() + str(tuple(v.shape)).encode())
                h.update(v.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            out[str(p.relative_to(lib))] = h.hexdigest()
        elif p.suffix == ".json":
            out[str(p.relative_to(lib))] = _sha(p)
    return out


# ------------------------------------------------------------------ clean_stale_temps (unit)
def test_clean_stale_temps_removes_only_the_projects_leftovers(tmp_path) -> None:
    d = tmp_path
    (d / "skills").mkdir()
    (d / "demos.hdf5").write_bytes(b"complete")
    stale = {
        ".demos.hdf5.1a2b3c4d.tmp": "file",      # atomic_temp_path's temp file
        ".skills.k3_x9q2z.tmp": "dir",           # atomic_dir's mkdtemp directory
        ".skills.0badc0de.old": "dir",           # the old directory moved aside (skills exists)
        ".write-probe.12345678.tmp": "file",     # check_writable's probe
    }
    keep = {"demos.hdf5": "file", "skills": "dir", "notes.tmp": "file", ".hidden": "file",
            ".foo.tmp": "file", ".demos.hdf5.collect": "dir", ".skills.work": "dir",
            ".demos.hdf5.lock": "file", ".x.toolong123.tmp": "file", ".x.ABCDEF12.tmp": "file"}
    for name, kind in {**stale, **keep}.items():
        if kind == "dir":
            (d / name).mkdir(exist_ok=True)
            (d / name / "inner").write_text("x")
        elif not (d / name).exists():
            (d / name).write_text("x")
    # a names filter limits the cleaning to the caller's own destinations
    assert clean_stale_temps(d, names=["demos.hdf5"]) == [d / ".demos.hdf5.1a2b3c4d.tmp"]
    removed = clean_stale_temps(d)
    assert sorted(p.name for p in removed) == sorted(set(stale) - {".demos.hdf5.1a2b3c4d.tmp"})
    assert sorted(p.name for p in d.iterdir()) == sorted(keep)
    assert (d / "demos.hdf5").read_bytes() == b"complete" and (d / "skills").is_dir()
    assert clean_stale_temps(d / "missing") == []


def test_clean_stale_temps_puts_back_an_old_dir_whose_swap_was_interrupted(tmp_path) -> None:
    """Fallback swap (no RENAME_EXCHANGE) killed between its two renames: ``skills`` is gone,
    ``.skills.<hex>.old`` is the only complete copy: it is renamed back, not deleted."""
    old = tmp_path / ".skills.0123abcd.old"
    old.mkdir()
    (old / "skill.yaml").write_text("old")
    new = tmp_path / ".skills.zz_9y8x7.tmp"
    new.mkdir()
    assert sorted(p.name for p in clean_stale_temps(tmp_path)) == [old.name, new.name]
    assert (tmp_path / "skills" / "skill.yaml").read_text() == "old"
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------- check_writable (unit)
def test_check_writable_creates_the_dir_and_leaves_no_probe(tmp_path) -> None:
    d = check_writable(tmp_path / "a" / "b")
    assert d == tmp_path / "a" / "b" and d.is_dir() and list(d.iterdir()) == []


def _unwritable_existing_dir(tmp_path: Path) -> Path:
    """An existing directory in which creating a file really fails for this user. root ignores
    permission bits, so as root it is /sys: sysfs refuses to create files even for root (EACCES;
    EROFS where /sys is mounted read-only)."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o500)
        return d
    return Path("/sys")


def _unwritable(kind: str, tmp_path: Path) -> Path:
    if kind == "parent_is_a_file":
        (tmp_path / "plain").write_text("x")
        return tmp_path / "plain" / "run"
    if kind == "path_is_a_file":
        (tmp_path / "plain").write_text("x")
        return tmp_path / "plain"
    return _unwritable_existing_dir(tmp_path)


@pytest.mark.parametrize("kind", ["parent_is_a_file", "path_is_a_file", "existing_read_only_dir"])
def test_check_writable_refuses_unwritable_dirs(kind, tmp_path) -> None:
    d = _unwritable(kind, tmp_path)
    with pytest.raises(OSError, match=f"directory {d} is not writable") as e:
        check_writable(d)
    assert e.value.filename == str(d)
    if kind == "existing_read_only_dir":
        assert isinstance(e.value, PermissionError) or e.value.errno == 30  # EROFS


@pytest.mark.parametrize("kind", ["parent_is_a_file", "existing_read_only_dir"])
def test_unwritable_run_dir_is_reported_before_any_episode_or_training(kind, tmp_path,
                                                                        monkeypatch) -> None:
    import robot_skills.cli as cli
    import robot_skills.data.collect as collect
    import robot_skills.training.trainer as trainer

    run_dir = _unwritable(kind, tmp_path)
    calls: list[str] = []

    def spy(name, fn):
        def wrapper(*a, **k):
            calls.append(name)
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(cli, "build_world", spy("build_world", cli.build_world))
    monkeypatch.setattr(collect, "collect_episode", spy("episode", collect.collect_episode))
    monkeypatch.setattr(trainer, "train_skill_library", spy("train", trainer.train_skill_library))
    cfg = cli.load_config([*COLLECT, *TRAIN[2:], f"run_dir={run_dir}"])
    t0 = time.perf_counter()
    with pytest.raises(OSError, match=f"directory {run_dir} is not writable"):
        cli.run_collect(cfg)
    with pytest.raises(OSError, match=f"directory {run_dir} is not writable"):
        cli.run_train(cfg)
    assert calls == [] and time.perf_counter() - t0 < 5.0


# ------------------------------------------------------------------ atomic_dir under SIGKILL
_SWAP_LOOP = textwrap.dedent("""
    import sys, itertools
    import robot_skills.utils.atomic as atomic
    if sys.argv[2] == "fallback":
        atomic._exchange = lambda a, b: False   # file systems without RENAME_EXCHANGE
    lib = sys.argv[1]
    for k in itertools.count():
        with atomic.atomic_dir(lib) as t:
            for i in range(20):
                (t / f"f{i}").write_bytes(bytes([k % 256]) * 8192)
            (t / "version").write_text(str(k))
""")


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_atomic_dir_killed_anywhere_leaves_a_complete_dir(mode, tmp_path) -> None:
    lib = tmp_path / "lib"
    rng = random.Random(1234)
    versions = []
    for _ in range(8):
        proc = _start([sys.executable, "-c", _SWAP_LOOP, str(lib), mode], tmp_path,
                      tmp_path / "log")
        assert _kill_when(proc, lambda: (lib / "version").is_file(), rng.uniform(0.0, 0.3))
        if mode == "exchange":  # the destination names a complete directory at every instant
            assert lib.is_dir()
        clean_stale_temps(tmp_path)  # what the next run does first (puts an .old back)
        files = sorted(p.name for p in lib.iterdir())
        assert files == sorted([*(f"f{i}" for i in range(20)), "version"])
        k = int((lib / "version").read_text())
        assert all((lib / f"f{i}").read_bytes() == bytes([k % 256]) * 8192 for i in range(20))
        assert _leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["lib", "log"]
        versions.append(k)
    assert max(versions) > 0  # the kills landed after swaps, not only before the first one


# ----------------------------------------------------------------------- rs-collect killed
def test_rs_collect_killed_anywhere_resumes_to_the_same_file(tmp_path) -> None:
    """Kill points: after a seeded number (1-2) of episodes finished by this attempt plus a
    seeded delay shorter than an episode, so kills land inside episodes and inside record
    writes; each attempt resumes the previous one. Then an unkilled rerun finishes."""
    over = [*TASK, "collect.mode=task", "collect.demos_per_task=6", "workers=1"]
    ref = tmp_path / "ref"
    _run(_rs("collect", ref, *over), tmp_path)
    run = tmp_path / "run"
    rng = random.Random(7)
    killed = 0
    for attempt in range(3):
        before = _records(run)
        remaining = 6 - len(before)
        if remaining < 3:
            break
        k, delay = rng.randint(1, min(2, remaining - 2)), rng.uniform(0.0, 0.2)
        proc = _start(_rs("collect", run, *over), tmp_path, tmp_path / f"log{attempt}")
        seen: set[str] = set(before)

        def ready(k=k) -> bool:
            seen.update(_records(run))
            return len(seen) - len(before) >= k

        assert _kill_when(proc, ready, delay), f"attempt {attempt} finished before its kill"
        killed += 1
        # every episode that was complete before the kill is still recorded
        assert seen <= _records(run), (seen, _records(run))
        assert not (run / "demos.hdf5").exists()
    assert killed >= 2
    out = _run(_rs("collect", run, *over), tmp_path)
    assert "resuming" in out
    _assert_same_demos(run / "demos.hdf5", ref / "demos.hdf5")  # byte-identical
    assert _leftovers(run) == [] and not collect_work_dir(run / "demos.hdf5").exists()
    summary = json.loads((run / "collect_summary.json").read_text())
    assert summary["demos"] == 6 and summary["resumed_episodes"] == len(seen)


_COLLECT_FAKE = textwrap.dedent("""
    import sys, time
    from test_collect import _fake_experts, _fake_world
    import robot_skills.data.collect as collect
    from robot_skills.data.hdf5 import DemoWriter

    task, out, slow = sys.argv[1], sys.argv[2], float(sys.argv[3])
    copy, add = DemoWriter.copy_demo, DemoWriter.add_demo
    def copy_demo(self, *a, **k):  # slow writes: a kill lands while a temp file is open
        name = copy(self, *a, **k)
        time.sleep(slow)
        return name
    def add_demo(self, *a, **k):
        name = add(self, *a, **k)
        time.sleep(slow)
        return name
    DemoWriter.copy_demo, DemoWriter.add_demo = copy_demo, add_demo
    collect.collect_demos([task], out, 8, make_world=_fake_world, make_experts=_fake_experts,
                          seed=10, max_steps=100, progress=False)
""")


def test_collect_killed_while_writing_records_or_the_merged_file(tmp_path) -> None:
    """Kills while a record's temporary file or the final ``.demos.hdf5.*.tmp`` is being written:
    nothing complete is lost, the temporary files are cleaned, the rerun's file is identical."""
    from test_executor import BOWL, DRAWER

    task = tmp_path / "bowl_in_drawer.json"
    task.write_text(json.dumps({"goal": [["in", BOWL, DRAWER]], "language": "bowl in drawer"}))
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir()
    run.mkdir()
    argv = [sys.executable, "-c", _COLLECT_FAKE, str(task)]
    _run([*argv, str(ref / "demos.hdf5"), "0"], tmp_path)
    work = collect_work_dir(run / "demos.hdf5")
    points = {  # kill point -> predicate
        "record temp": lambda: any(work.glob(".*.hdf5.*.tmp")),
        "merge temp": lambda: any(run.glob(".demos.hdf5.*.tmp")),
    }
    rng = random.Random(3)
    for name, ready in points.items():
        proc = _start([*argv, str(run / "demos.hdf5"), "0.3"], tmp_path, tmp_path / "log")
        before = set()

        def watch(ready=ready) -> bool:
            before.update(p.name for p in work.glob("*.hdf5"))
            return ready()

        assert _kill_when(proc, watch, rng.uniform(0.0, 0.01)), name
        assert before <= {p.name for p in work.glob("*.hdf5")}, name
        assert not (run / "demos.hdf5").exists(), name
        assert _leftovers(run) or _leftovers(work), name  # the kill did leave a temp behind
    _run([*argv, str(run / "demos.hdf5"), "0"], tmp_path)
    _assert_same_demos(run / "demos.hdf5", ref / "demos.hdf5")
    assert _leftovers(run) == [] and not work.exists()


# --------------------------------------------------------- collect: resume and config changes
def test_collect_resumes_same_config_and_starts_over_on_another(tmp_path, monkeypatch,
                                                                capsys) -> None:
    from test_collect import _fake_experts, _fake_world
    from test_executor import BOWL, DRAWER

    import robot_skills.data.collect as collect

    task = tmp_path / "bowl_in_drawer.json"
    task.write_text(json.dumps({"goal": [["in", BOWL, DRAWER]], "language": "bowl in drawer"}))
    kw = {"make_world": _fake_world, "make_experts": _fake_experts, "seed": 10,
          "max_steps": 100, "progress": False}
    ref = collect_demos([task], tmp_path / "ref.hdf5", 4, **kw)
    out = tmp_path / "demos.hdf5"
    real, n = collect.collect_episode, []

    def dies_after_two(job, factories):
        if len(n) == 2:
            raise KeyboardInterrupt  # the run stops after two finished episodes
        n.append(job.seed)
        return real(job, factories)

    monkeypatch.setattr(collect, "collect_episode", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        collect_demos([task], out, 4, **kw)
    monkeypatch.setattr(collect, "collect_episode", real)
    assert len(_records(tmp_path)) == 2 and not out.exists()
    # another noise level: the two records are discarded loudly, never mixed in
    other = collect_demos([task], out, 4, noise=NoiseConfig(std=0.01, prob=0.5), **kw)
    err = capsys.readouterr().err
    assert "starting over" in err and "noise_std: 0.005 -> 0.01" in err, err
    assert other["resumed_episodes"] == 0
    # same config again after a stop: resumes, and the file equals the uninterrupted one
    n.clear()
    monkeypatch.setattr(collect, "collect_episode", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        collect_demos([task], out, 4, **kw)
    monkeypatch.setattr(collect, "collect_episode", real)
    again = collect_demos([task], out, 4, **kw)
    assert "resuming" in capsys.readouterr().err
    assert again["resumed_episodes"] == 2
    assert [e["seed"] for e in again["tasks"]["bowl_in_drawer"]["episodes"]] == [10, 11, 12, 13]
    _assert_same_demos(out, tmp_path / "ref.hdf5")
    assert again["demos"] == ref["demos"]


def test_second_collector_on_the_same_file_is_refused(tmp_path) -> None:
    from test_collect import _fake_experts, _fake_world

    out = tmp_path / "demos.hdf5"
    with exclusive_lock(tmp_path / ".demos.hdf5.lock", "test"), \
            pytest.raises(RuntimeError, match="locked by another running process"):
        collect_demos([tmp_path / "t.json"], out, 1, make_world=_fake_world,
                      make_experts=_fake_experts, progress=False)


# --------------------------------------------------------------------------- training killed
_TRAIN_SYNTH = textwrap.dedent("""
    import sys
    from test_crash_safety import _tiny_train
    _tiny_train(sys.argv[1], sys.argv[2], int(sys.argv[3]))
""")


def _tiny_train(demos: str, lib: str, seed: int) -> None:
    from robot_skills.training.trainer import TrainConfig, train_skill_library

    cfg = TrainConfig(steps=40, lora_steps=30, ckpt_every=10, hidden=32, layers=2, chunk_size=5,
                      batch_size=64, seed=seed, device="cpu", num_threads=1, progress=False,
                      tensorboard=False)
    train_skill_library([demos], lib, cfg)


def test_retrain_killed_while_building_keeps_the_old_library(tmp_path) -> None:
    """Fast tier: a retrain (another seed) killed while the new library is being built beside
    the old one leaves the old library loading completely; the rerun gives the weights of an
    unkilled retrain."""
    from robot_skills.data.dataset import write_synthetic_demos

    demos = str(write_synthetic_demos(tmp_path / "d.hdf5", num_demos=6, steps_per_skill=20))
    run, ref = tmp_path / "run", tmp_path / "ref"
    _tiny_train(demos, str(run / "skills"), 0)  # the old library
    old = _library_digest(run / "skills")
    _tiny_train(demos, str(ref / "skills"), 1)  # what the retrain must give
    new = _library_digest(ref / "skills")
    assert old != new
    argv = [sys.executable, "-c", _TRAIN_SYNTH, demos, str(run / "skills"), "1"]
    proc = _start(argv, tmp_path, tmp_path / "log")
    assert _kill_when(proc, lambda: any(run.glob(".skills.*.tmp")), 0.02)
    assert set(SkillLibrary(run / "skills").verify_all().values()) == {"ok"}
    assert _library_digest(run / "skills") == old
    _run(argv, tmp_path)
    assert set(SkillLibrary(run / "skills").verify_all().values()) == {"ok"}
    assert _library_digest(run / "skills") == new
    assert _leftovers(run) == []


def test_checkpoints_of_a_library_trained_before_move_beside_it(tmp_path) -> None:
    """A library written by the previous layout (checkpoints in ``<lib>/.work``) resumes."""
    from robot_skills.data.dataset import write_synthetic_demos
    from robot_skills.training.trainer import library_work_dir

    demos = str(write_synthetic_demos(tmp_path / "d.hdf5", num_demos=4, steps_per_skill=20))
    lib = tmp_path / "skills"
    _tiny_train(demos, str(lib), 0)
    os.replace(library_work_dir(lib), lib / ".work")  # the old layout
    _tiny_train(demos, str(lib), 0)
    assert not (lib / ".work").exists() and library_work_dir(lib).is_dir()
    assert SkillLibrary(lib).base()[0].provenance["metrics"]["resumed_from"] == 40


@pytest.mark.slow
def test_rs_train_killed_anywhere_keeps_a_complete_library(tmp_path) -> None:
    """Real ``rs-train`` retrains (seed 1 over a seed-0 library) SIGKILLed at seeded random
    instants over the whole run and right after the new library's build directory appears:
    after every kill ``<run_dir>/skills`` is the complete old library or the complete new one
    (``verify_all`` all ok); the final rerun's weights equal an unkilled retrain's."""
    run, ref = tmp_path / "run", tmp_path / "ref"
    _run(_rs("collect", run, *COLLECT), tmp_path)
    ref.mkdir()
    shutil.copy(run / "demos.hdf5", ref / "demos.hdf5")
    _run(_rs("train", run, *TRAIN), tmp_path)
    old = _library_digest(run / "skills")
    t0 = time.monotonic()
    _run(_rs("train", ref, *TRAIN, "seed=1"), tmp_path)
    t_train = time.monotonic() - t0
    new = _library_digest(ref / "skills")
    assert old != new
    rng = random.Random(11)
    shutil.copytree(run / "skills", tmp_path / "old_skills")
    kills = [("delay", rng.uniform(0.3, t_train)) for _ in range(5)]
    kills += [("build dir", rng.uniform(0.0, 0.05)) for _ in range(2)]
    outcomes = []
    for i, (point, delay) in enumerate(kills):
        proc = _start(_rs("train", run, *TRAIN, "seed=1"), tmp_path, tmp_path / f"log{i}")
        ready = (lambda: True) if point == "delay" else (lambda: any(run.glob(".skills.*.tmp")))
        if _kill_when(proc, ready, delay):
            report = SkillLibrary(run / "skills").verify_all()
            assert set(report.values()) == {"ok"}, (point, delay, report)
        digest = _library_digest(run / "skills")
        assert digest in (old, new), (point, delay)
        outcomes.append("old" if digest == old else "new")
        if digest == new:  # swapped in: the next retrain starts over from the old library
            shutil.rmtree(run / "skills")
            shutil.rmtree(run / ".skills.work")
            shutil.copytree(tmp_path / "old_skills", run / "skills")
    assert outcomes.count("old") >= 2, outcomes  # kills landed before the swap
    _run(_rs("train", run, *TRAIN, "seed=1"), tmp_path)
    assert set(SkillLibrary(run / "skills").verify_all().values()) == {"ok"}
    assert _library_digest(run / "skills") == new
    assert _leftovers(run) == []


@pytest.mark.slow
def test_rs_collect_then_train_killed_repeatedly_finish_like_an_unkilled_run(tmp_path) -> None:
    """The whole data path under repeated kills: rs-collect killed at seeded random delays until
    it finishes, then rs-train likewise; the demos and the library equal an unkilled run's."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    t0 = time.monotonic()
    _run(_rs("collect", ref, *COLLECT), tmp_path)
    t_collect = time.monotonic() - t0
    t0 = time.monotonic()
    _run(_rs("train", ref, *TRAIN), tmp_path)
    t_train = time.monotonic() - t0
    rng = random.Random(5)
    kills = {}
    for verb, t_full in (("collect", t_collect), ("train", t_train)):
        over = COLLECT if verb == "collect" else TRAIN
        kills[verb] = 0
        for i in range(10):
            proc = _start(_rs(verb, run, *over), tmp_path, tmp_path / f"{verb}{i}.log")
            if not _kill_when(proc, lambda: True, rng.uniform(0.2, 0.7 * t_full)):
                assert proc.returncode == 0, (tmp_path / f"{verb}{i}.log").read_text()[-3000:]
                break
            kills[verb] += 1
            if verb == "train" and (run / "skills").exists():
                assert set(SkillLibrary(run / "skills").verify_all().values()) == {"ok"}
        else:
            _run(_rs(verb, run, *over), tmp_path)
    assert kills["collect"] >= 1 and kills["train"] >= 1, kills
    _assert_same_demos(run / "demos.hdf5", ref / "demos.hdf5")
    assert _library_digest(run / "skills") == _library_digest(ref / "skills")
    assert _leftovers(run) == []


def test_rs_eval_killed_anywhere_never_loses_or_corrupts_the_last_results(tmp_path) -> None:
    """SIGKILL ``rs-eval`` at seeded random points of a re-run: the previous complete
    ``results.json`` / ``report.md`` stay whole (or are replaced whole), nothing half-written is
    left beside them, and a final re-run finishes with the same episodes as the first run."""
    run = tmp_path / "run"
    argv = _rs("eval", run, *TASK, "eval.policy=expert", "eval.episodes_per_task=2",
               "eval.video=false", "workers=1")
    _run(argv, tmp_path)
    out = run / "eval_expert"
    first = json.loads((out / "results.json").read_text())
    rng = random.Random(7)
    killed = 0
    for k in range(3):
        proc = _start(argv, tmp_path, tmp_path / f"eval{k}.log")
        killed += _kill_when(proc, lambda: True, rng.uniform(0.5, 4.0))
        res = json.loads((out / "results.json").read_text())  # whole JSON, never a torn file
        assert res["tasks"]["put_the_bowl_on_the_plate"]["n"] == 2
        assert (out / "report.md").read_text().startswith("# Benchmark results")
        assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert killed >= 1, "no kill landed inside the run"
    _run(argv, tmp_path)
    last = json.loads((out / "results.json").read_text())
    key = [(e["task"], e["seed"], e["success"], e["steps"]) for e in first["episodes"]]
    assert key == [(e["task"], e["seed"], e["success"], e["steps"]) for e in last["episodes"]]
