"""The self-contained HTML report, opened in headless Chromium (Debian's ``chromium``, driven by
Playwright): the success table has one row per task, an episode that could not be built is counted
apart, the perturbation plot is drawn, the rollout videos are embedded as data URIs and decode,
the page fetches nothing from outside, and the video size cap leaves videos out with a note.

The run comes from the benchmark runner on the fake world of ``test_evaluation`` (two tasks, one
perturbation, one task that cannot be built, one episode whose world fails to build), so the page
is checked against a real ``results.json`` and real mp4 files in a second or so.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_evaluation import _write_tasks, make_fake_skills, make_fake_world

from robot_skills import cli
from robot_skills.evaluation.html_report import format_html, write_run_report
from robot_skills.evaluation.perturbations import PerturbationSpec
from robot_skills.evaluation.runner import BenchmarkRunner

NOT_BUILT = ("put_bowl_in_drawer", 2)
"""(task, seed) whose world raises while being built in the unperturbed condition."""


def _world_with_one_not_built(task_path: Path, seed: int, perturbation: Any) -> Any:
    if (Path(task_path).stem, seed) == NOT_BUILT and perturbation is None:
        raise RuntimeError("PlacementError: no free spot for akita_black_bowl_1 (test)")
    return make_fake_world(task_path, seed, perturbation)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html")
    runner = BenchmarkRunner(_world_with_one_not_built, make_fake_skills, progress=False,
                             max_replans=1)
    runner.run_suite(_write_tasks(root), episodes_per_task=4,
                     perturbations=[PerturbationSpec("shift5cm_2distractors",
                                                     region_shift=(0.05, 0), distractors=2)],
                     out_dir=root / "out")
    return root / "out"


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, ("headless Chromium is needed to check the HTML report: install Debian's "
                  "`chromium` package (apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def test_rs_report_writes_a_page_that_chromium_shows(run_dir: Path, browser: Any) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    (run_dir / "report.html").unlink(missing_ok=True)
    cli.report_main([str(run_dir)])
    page_file = run_dir / "report.html"
    assert page_file.stat().st_size > 0

    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")

    table = page.locator("#success-table")
    assert table.is_visible()
    rows = table.locator("tbody tr")
    assert rows.count() == len(results["tasks"]) == 2  # the unbuildable task is listed apart
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())] == list(
        results["tasks"])
    headers = table.locator("thead th").all_inner_texts()
    assert headers[:4] == ["Task", "Success (95% CI)", "n", "Not built"]
    assert "shift5cm_2distractors" in headers

    # the episode whose world was not built: counted apart, left out of n and the rate
    bowl = results["tasks"][NOT_BUILT[0]]
    assert bowl["n"] == 3 and bowl["not_run"]["count"] == 1
    cells = rows.nth(0).locator("td").all_inner_texts()
    assert cells[2] == "3" and cells[3] == "1"
    assert cells[1].startswith(f"{100 * bowl['success_rate']:.1f}% "
                               f"[{100 * bowl['ci95'][0]:.0f}, {100 * bowl['ci95'][1]:.0f}]")
    for atom, v in bowl["subgoal_progress"].items():  # one progress bar per goal atom
        assert f"{100 * v:.0f}% {atom}" in " ".join(cells[5].split())
    bar = rows.nth(0).locator(".sg .bar")
    fill = bar.locator("span")
    ratio = fill.bounding_box()["width"] / bar.bounding_box()["width"]
    assert ratio == pytest.approx(next(iter(bowl["subgoal_progress"].values())), abs=0.02)
    assert "needs_a_spaceship" in page.locator("body").inner_text()  # skipped task, with reason

    plot = page.locator("#perturbation-plot svg")
    assert plot.is_visible() and plot.bounding_box()["height"] > 100
    assert "shift5cm_2distractors" in plot.inner_html()

    videos = page.locator("video")
    expected = sum(1 for t in results["tasks"].values() if t["video"]) + sum(
        1 for p in results["perturbations"].values() for t in p["tasks"].values() if t["video"])
    assert videos.count() == expected >= 2
    for i in range(videos.count()):
        v = videos.nth(i)
        v.scroll_into_view_if_needed()
        assert v.is_visible()
        assert v.get_attribute("src").startswith("data:video/mp4;base64,")
        assert len(v.get_attribute("src")) > 1000
    state = page.evaluate("""async () => {
        const out = [];
        for (const v of document.querySelectorAll('video')) {
            if (v.readyState < 1 && !v.error) {
                await new Promise(res => { v.addEventListener('loadedmetadata', res, {once: true});
                                           v.addEventListener('error', res, {once: true});
                                           setTimeout(res, 10000); });
            }
            out.push({readyState: v.readyState, duration: v.duration,
                      error: v.error ? v.error.code + ' ' + v.error.message : null,
                      width: v.videoWidth,
                      h264: v.canPlayType('video/mp4; codecs="avc1.42E01E"')});
        }
        return out;
    }""")
    assert all(s["h264"] for s in state), f"this Chromium cannot decode H.264: {state}"
    for s in state:
        assert s["error"] is None and s["readyState"] >= 1, state
        assert s["duration"] > 0 and s["width"] > 0, state
    # self-contained: nothing but the page itself (and its data: URIs) was requested
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    page.close()


def test_video_cap_leaves_videos_out_and_says_so(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    sizes = sorted(p.stat().st_size for p in (run_dir / "videos").glob("*.mp4"))
    assert len(sizes) == 4
    page = format_html(results, run_dir, max_video_bytes=sizes[0])
    assert page.count("<video ") == 1
    assert page.count("left out, embedding its") == 3
    assert "1 of 4 videos embedded" in page and 'href="videos/' in page
    none = format_html(results, run_dir, max_video_bytes=0)
    assert none.count("<video ") == 0 and none.count("left out, embedding its") == 4
    everything = format_html(results, run_dir)
    assert everything.count("<video ") == 4 and "videos-left-out" not in everything
    assert len(everything) > 4 / 3 * sum(sizes)  # base64 of every file is inside
    for bad in ("<script", "<link", 'src="http', 'href="http', "url(http"):
        assert bad not in everything


def test_moved_run_dir_still_finds_its_videos(run_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved)
    res = moved / "results.json"  # as if written on another machine: its paths do not exist here
    res.write_text(res.read_text().replace(str(run_dir), str(tmp_path / "gone")))
    assert str(run_dir) not in res.read_text()
    page = write_run_report(moved).read_text()
    assert page.count("<video ") == 4 and "not found" not in page
    (moved / "videos" / "turn_on_stove.mp4").unlink()
    page = write_run_report(moved).read_text()
    assert page.count("<video ") == 3 and page.count("video file not found") == 1


def test_rs_report_refuses_a_dir_without_results(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.report_main([str(tmp_path)])
    assert info.value.code == 2
    assert f"no results.json in {tmp_path}" in capsys.readouterr().err
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(SystemExit):
        cli.report_main([str(tmp_path)])
    assert "not valid JSON" in capsys.readouterr().err
    (tmp_path / "results.json").write_text(json.dumps({"tasks": {}}))
    with pytest.raises(SystemExit):
        cli.report_main([str(tmp_path)])
    assert "not a benchmark results file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_video_bytes"):
        format_html({"tasks": {}, "suite": {}, "perturbations": {}}, max_video_bytes=-1)
