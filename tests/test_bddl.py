"""BDDL reader/writer and task-file suites (robot_skills/tasks/bddl.py, robot_skills/tasks/suites.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libero_paths import LIBERO_BDDL

from robot_skills.tasks.bddl import (
    BddlParseError,
    BddlTask,
    Region,
    load_bddl,
    parse_bddl,
    write_bddl,
)
from robot_skills.tasks.suites import (
    SuiteNotFoundError,
    extract_bddl_files,
    fetch_libero_bddl,
    resolve_suite,
    scan_suite,
)
from sim.factories import SimWorldFactory

SHARED = LIBERO_BDDL
ALL_FILES = sorted(SHARED.rglob("*.bddl")) if SHARED.is_dir() else []

MINI = """\
(define (problem Mini)
  (:domain robosuite)
  (:language put the bowl on the plate)
  (:regions
    (plate_region (:target main_table) (:ranges ((0.0 0.1 0.02 0.12))))
    (bowl_region (:target main_table) (:ranges ((-0.1 -0.01 -0.08 0.01) (0.1 0.1 0.12 0.12)))
       (:yaw_rotation ((0.0 0.5))))
    (top_region (:target wooden_cabinet_1))
  )
  (:fixtures main_table - table wooden_cabinet_1 - wooden_cabinet)
  (:objects bowl_1 bowl_2 - akita_black_bowl plate_1 - plate)
  (:obj_of_interest bowl_1 plate_1)
  (:init (On bowl_1 main_table_bowl_region) (on plate_1 main_table_plate_region)
         (Open wooden_cabinet_1_top_region) (On bowl_2 plate_1))
  (:goal (And (On bowl_1 plate_1) (Close wooden_cabinet_1_top_region)))
)
"""


def test_mini_fields():
    t = parse_bddl(MINI)
    assert t.problem_name == "Mini" and t.domain == "robosuite" and t.source == "<string>"
    assert t.language == "put the bowl on the plate"
    assert list(t.regions) == ["main_table_plate_region", "main_table_bowl_region",
                               "wooden_cabinet_1_top_region"]
    r = t.regions["main_table_bowl_region"]
    assert r.ranges == [(-0.1, -0.01, -0.08, 0.01), (0.1, 0.1, 0.12, 0.12)]
    assert r.yaw_rotation == [(0.0, 0.5)]
    assert t.regions["wooden_cabinet_1_top_region"].ranges == []
    assert t.regions["wooden_cabinet_1_top_region"].yaw_rotation is None
    assert t.objects == {"bowl_1": "akita_black_bowl", "bowl_2": "akita_black_bowl",
                         "plate_1": "plate"}
    assert t.fixtures == {"main_table": "table", "wooden_cabinet_1": "wooden_cabinet"}
    assert t.init[1] == ("on", "plate_1", "main_table_plate_region")
    assert t.goal == [("on", "bowl_1", "plate_1"), ("close", "wooden_cabinet_1_top_region")]


def test_region_full_name():
    assert Region("top_region", "wooden_cabinet_1").full_name == "wooden_cabinet_1_top_region"


def test_every_shared_file_parses_and_round_trips():
    assert len(ALL_FILES) >= 100
    for p in ALL_FILES:
        t = load_bddl(p)
        assert t.goal, p
        assert parse_bddl(write_bddl(t), t.source) == t, p


def test_libero_goal_file_exact_fields():
    p = SHARED / "libero_goal" / "open_the_top_drawer_and_put_the_bowl_inside.bddl"
    t = load_bddl(p)
    assert t.source == str(p)
    assert t.problem_name == "LIBERO_Tabletop_Manipulation"
    assert t.language == "Open the top layer of the drawer and put the bowl inside"
    assert t.fixtures == {"main_table": "table", "wooden_cabinet_1": "wooden_cabinet",
                          "flat_stove_1": "flat_stove", "wine_rack_1": "wine_rack"}
    assert t.objects == {"akita_black_bowl_1": "akita_black_bowl", "cream_cheese_1": "cream_cheese",
                         "wine_bottle_1": "wine_bottle", "plate_1": "plate"}
    assert t.obj_of_interest == ["akita_black_bowl_1", "wooden_cabinet_1_top_region"]
    cab = t.regions["main_table_cabinet_region"]
    assert cab.target == "main_table" and cab.name == "cabinet_region"
    assert cab.ranges == [(0.02, -0.25, 0.04, -0.23)]
    assert cab.yaw_rotation == [(3.141592653589793, 3.141592653589793)]
    assert t.regions["wine_rack_1_top_region"].target == "wine_rack_1"
    assert len(t.regions) == 16
    assert ("on", "wooden_cabinet_1", "main_table_cabinet_region") in t.init
    assert len(t.init) == 7
    assert t.goal == [("in", "akita_black_bowl_1", "wooden_cabinet_1_top_region")]


@pytest.mark.parametrize("text, message", [
    (MINI[:200], "unexpected end of file"),
    (MINI + ")", "unexpected content"),
    (MINI.replace("(On bowl_1 plate_1)", "(Onn bowl_1 plate_1)"), "unknown predicate 'Onn'"),
    (MINI.replace("(On bowl_1 plate_1)", "(On bowl_1)"), "On takes 2 argument(s), got 1"),
    (MINI.replace("(On bowl_1 plate_1)", "(On bowl_1 main_table_nowhere_region)"),
     "'main_table_nowhere_region', which is not a declared"),
    (MINI.replace("(On bowl_1 plate_1)", "(On bowl_9 plate_1)"), "'bowl_9', which is not"),
    (MINI.replace("(0.0 0.1 0.02 0.12)", "(0.0 0.1 0.02)"), "must be 4 numbers"),
    (MINI.replace("(0.0 0.1 0.02 0.12)", "(0.3 0.1 0.02 0.12)"), "min > max"),
    (MINI.replace("(0.0 0.1 0.02 0.12)", "(0.0 zero 0.02 0.12)"), "must be a number, got 'zero'"),
    (MINI.replace("  (:goal (And (On bowl_1 plate_1) (Close wooden_cabinet_1_top_region)))\n", ""),
     "missing (:goal"),
    (MINI.replace("(:target main_table) (:ranges ((0.0", "(:ranges ((0.0"), "has no (:target"),
    (MINI.replace("plate_1 - plate)", "plate_1 - plate bowl_1 - akita_black_bowl)"),
     "'bowl_1' declared twice"),
    ("", "empty task file"),
    ("(define (problem X) (:goal (And)))", "conjunction is empty"),
])
def test_malformed_input_gets_a_specific_error(text, message):
    with pytest.raises(BddlParseError) as e:
        parse_bddl(text, source="bad.bddl")
    assert message in str(e.value)
    assert str(e.value).startswith("bad.bddl:")


def test_error_names_line_and_column():
    text = MINI.replace("(Open wooden_cabinet_1_top_region)", "(Opened wooden_cabinet_1_top_region)")
    with pytest.raises(BddlParseError, match=r"^x\.bddl:14:10: unknown predicate 'Opened'"):
        parse_bddl(text, source="x.bddl")


def test_unbalanced_close_paren_reported_at_its_position():
    with pytest.raises(BddlParseError, match=r"^<string>:1:1: unbalanced parentheses"):
        parse_bddl(")(define)")


def test_load_bddl_names_the_file(tmp_path):
    p = tmp_path / "t.bddl"
    p.write_text(MINI[:-3])
    with pytest.raises(BddlParseError, match=str(p)):
        load_bddl(p)


# --- fuzzing ---------------------------------------------------------------------------------

_SEEDS = [MINI] + [p.read_text() for p in ALL_FILES[::12]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_truncations_and_mutations_never_crash(data):
    text = data.draw(st.sampled_from(_SEEDS))
    op = data.draw(st.sampled_from(["truncate", "delete", "insert", "replace", "swap_words"]))
    i = data.draw(st.integers(0, len(text)))
    if op == "truncate":
        text = text[:i]
    elif op == "delete":
        j = data.draw(st.integers(i, min(len(text), i + 30)))
        text = text[:i] + text[j:]
    elif op == "insert":
        text = text[:i] + data.draw(st.sampled_from(["(", ")", " x ", "\n", "-", "(On a b)",
                                                      "1e999", ";", "\x00"])) + text[i:]
    elif op == "replace":
        text = text[:i] + data.draw(st.text(max_size=5)) + text[i + 5:]
    else:
        words = text.split(" ")
        a = data.draw(st.integers(0, len(words) - 1))
        b = data.draw(st.integers(0, len(words) - 1))
        words[a], words[b] = words[b], words[a]
        text = " ".join(words)
    try:
        t = parse_bddl(text)
    except BddlParseError:
        return
    assert isinstance(t, BddlTask) and t.goal


_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_num = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


@st.composite
def _tasks(draw):
    objs = draw(st.lists(_name.map(lambda s: "o_" + s), min_size=1, max_size=4, unique=True))
    fixtures = {"main_table": "table"}
    regions = {}
    for _ in range(draw(st.integers(1, 3))):
        boxes = []
        for _ in range(draw(st.integers(1, 2))):
            x = sorted([draw(_num), draw(_num)])
            y = sorted([draw(_num), draw(_num)])
            boxes.append((x[0], y[0], x[1], y[1]))
        yaw = draw(st.one_of(st.none(), st.lists(
            st.tuples(_num, _num).map(lambda t: tuple(sorted(t))), min_size=1, max_size=2)))
        r = Region(draw(_name.map(lambda s: "r_" + s)), "main_table", boxes, yaw)
        regions[r.full_name] = r
    names = list(regions)
    init = [("on", o, draw(st.sampled_from(names))) for o in objs]
    goal = [draw(st.sampled_from([("on", objs[0], names[0]), ("in", objs[-1], names[-1])]))]
    lang = draw(st.from_regex(r"[A-Za-z][A-Za-z ,']{0,30}[a-z]", fullmatch=True))
    lang = " ".join(lang.split())
    return BddlTask("<string>", "P", lang, regions, fixtures, {o: "cat" for o in objs},
                    objs[:1], init, goal)


@settings(max_examples=60, deadline=None)
@given(_tasks())
def test_write_then_parse_round_trips(task):
    assert parse_bddl(write_bddl(task)) == task


def test_write_refuses_parentheses_in_language():
    t = parse_bddl(MINI)
    t.language = "put (it) here"
    with pytest.raises(ValueError, match="cannot contain"):
        write_bddl(t)


# --- task files ------------------------------------------------------------------------------

def _fake_sdist(path: Path) -> Path:
    archive = path / "libero-0.1.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        def add(name, data: bytes):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("libero-0.1.1/libero/libero/bddl_files/libero_goal/a.bddl", MINI.encode())
        add("libero-0.1.1/libero/libero/bddl_files/libero_goal/b.bddl", MINI.encode())
        add("libero-0.1.1/libero/libero/bddl_files/libero_10/c.bddl", MINI.encode())
        add("libero-0.1.1/libero/libero/bddl_files/libero_goal/readme.txt", b"not a task")
        add("libero-0.1.1/setup.py", b"print('x')")
        add("libero-0.1.1/libero/libero/bddl_files/../../../../evil.bddl", b"(evil)")
        add("/abs/libero/libero/bddl_files/libero_goal/abs.bddl", b"(evil)")
    return archive


def test_fetch_extracts_only_bddl_files_safely(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOT_SKILLS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ROBOT_SKILLS_LIBERO_BDDL", raising=False)
    calls = []

    def downloader(dest: Path) -> Path:
        calls.append(dest)
        return _fake_sdist(dest)

    d = resolve_suite("libero_goal", downloader=downloader)
    assert d == tmp_path / "cache" / "libero_bddl" / "libero_goal"
    assert sorted(p.name for p in d.iterdir()) == ["a.bddl", "b.bddl"]
    root = d.parent
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["libero_10/c.bddl", "libero_goal/a.bddl", "libero_goal/b.bddl"]
    assert not list(tmp_path.rglob("evil.bddl")) and not list(tmp_path.rglob("abs.bddl"))
    assert resolve_suite("libero_10", downloader=downloader).name == "libero_10"
    assert len(calls) == 1  # cached after the first fetch
    with pytest.raises(SuiteNotFoundError, match="bddl_files/libero_90"):
        resolve_suite("libero_90", downloader=downloader)


def test_fetch_raises_when_archive_has_no_task_files(tmp_path):
    def downloader(dest: Path) -> Path:
        a = dest / "x.tar.gz"
        with tarfile.open(a, "w:gz") as tar:
            info = tarfile.TarInfo("libero/setup.py")
            tar.addfile(info, io.BytesIO(b""))
        return a
    with pytest.raises(RuntimeError, match="holds no"):
        fetch_libero_bddl(tmp_path / "dest", downloader)


def test_resolve_suite_paths_and_env(tmp_path, monkeypatch):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "t.bddl").write_text(MINI)
    assert resolve_suite(tmp_path / "s") == tmp_path / "s"
    with pytest.raises(SuiteNotFoundError, match="no .bddl files"):
        resolve_suite(tmp_path)
    with pytest.raises(SuiteNotFoundError, match="neither a directory"):
        resolve_suite("no_such_suite")
    (tmp_path / "lib" / "libero_goal").mkdir(parents=True)
    (tmp_path / "lib" / "libero_goal" / "t.bddl").write_text(MINI)
    monkeypatch.setenv("ROBOT_SKILLS_LIBERO_BDDL", str(tmp_path / "lib"))

    def no_download(dest):
        raise AssertionError("must not download")
    assert resolve_suite("libero_goal", downloader=no_download) == tmp_path / "lib" / "libero_goal"
    with pytest.raises(SuiteNotFoundError, match="has no libero_spatial"):
        resolve_suite("libero_spatial", downloader=no_download)


SIM_CATEGORIES = SimWorldFactory().supported_categories()


def test_scan_suite_lists_unsupported_without_crashing(tmp_path):
    (tmp_path / "ok.bddl").write_text(MINI)
    (tmp_path / "micro.bddl").write_text(MINI.replace("- plate)", "- flux_capacitor)"))
    (tmp_path / "broken.bddl").write_text(MINI[:50])
    ok, bad = scan_suite(tmp_path, SIM_CATEGORIES)
    assert ok == [tmp_path / "ok.bddl"]
    assert bad[tmp_path / "micro.bddl"] == ["unsupported category: flux_capacitor"]
    assert bad[tmp_path / "broken.bddl"][0].startswith("parse error:")
    with pytest.raises(SuiteNotFoundError):
        scan_suite(tmp_path / "ok.bddl", SIM_CATEGORIES)


def test_scan_suite_checks_against_the_given_categories(tmp_path):
    """What is supported is the caller's world's business (sim proxies, or what perception
    knows on a real arm), not a table compiled into the core."""
    (tmp_path / "ok.bddl").write_text(MINI)
    ok, bad = scan_suite(tmp_path, {"table", "wooden_cabinet", "akita_black_bowl"})
    assert ok == [] and bad[tmp_path / "ok.bddl"] == ["unsupported category: plate"]
    ok, bad = scan_suite(tmp_path, frozenset())
    assert bad[tmp_path / "ok.bddl"] == [f"unsupported category: {c}" for c in
                                         ("akita_black_bowl", "plate", "table", "wooden_cabinet")]
    ok, bad = scan_suite(tmp_path, {"table", "wooden_cabinet", "akita_black_bowl", "plate"})
    assert ok == [tmp_path / "ok.bddl"] and not bad


def test_scan_shared_suites():
    for suite in ("libero_goal", "libero_spatial", "libero_object"):
        ok, bad = scan_suite(SHARED / suite, SIM_CATEGORIES)
        assert len(ok) == 10 and not bad, (suite, bad)
    for suite, n in (("libero_90", 90), ("libero_10", 10)):   # every category has a proxy
        ok, bad = scan_suite(SHARED / suite, SIM_CATEGORIES)
        assert len(ok) == n and not bad, (suite, bad)


def test_extract_rejects_nothing_outside_dest(tmp_path):
    n = extract_bddl_files(_fake_sdist(tmp_path), tmp_path / "out")
    assert n == 3
