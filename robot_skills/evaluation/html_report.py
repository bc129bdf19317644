"""One self-contained HTML page per benchmark run (``report.html`` beside ``results.json``).

The page needs nothing but the file itself (no external URL, no CDN, no script): the success table
with Wilson 95 % intervals (drawn as bars), per-subgoal progress bars, episodes that were not built
or did not run (counted apart from success and failure), a plot of success per perturbation (inline
SVG drawn by matplotlib) and the rollout videos embedded as ``data:video/mp4;base64`` URIs, up to a
total size cap (a video left out is named, with the reason and its relative path).

``rs-report <run_dir>`` (re)writes the page from ``<run_dir>/results.json``; ``rs-eval`` writes it
after every evaluation.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robot_skills.utils.atomic import atomic_write_text

__all__ = ["format_html", "write_html", "write_run_report", "load_results",
           "DEFAULT_MAX_VIDEO_BYTES", "REPORT_NAME"]

REPORT_NAME = "report.html"
"""File name of the page in a run directory."""
DEFAULT_MAX_VIDEO_BYTES = 40 * 2**20
"""Cap on the total size of the mp4 files embedded in one page, bytes (40 MiB; base64 makes the
page about 4/3 of that). Videos past the cap are left out and listed."""
UNPERTURBED = "unperturbed"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;
max-width:1400px;padding:0 1em;color:#1d2430;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #dde;
padding-bottom:.2em}
.meta{color:#556;font-size:.9em}.meta code{background:#f3f4f7;padding:0 .3em}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}
.card{border:1px solid #dde;border-radius:6px;padding:.6em 1em;min-width:10em}
.card .v{font-size:1.5em;font-weight:600}.card .l{color:#556;font-size:.85em}
table{border-collapse:collapse;font-size:.9em;width:100%}
th,td{border-bottom:1px solid #e4e6ec;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f4f7;position:sticky;top:0}tfoot td{font-weight:600;border-top:2px solid #ccd}
.num{text-align:right;font-variant-numeric:tabular-nums}
.ci{position:relative;width:120px;height:10px;background:#eef0f4;border-radius:3px;
margin-top:3px}
.ci .r{position:absolute;top:0;height:10px;background:#9cc3e6;border-radius:3px}
.ci .p{position:absolute;top:-2px;width:2px;height:14px;background:#1f5f99}
.sg{display:flex;align-items:center;gap:.4em;font-size:.85em;white-space:nowrap}
.sg .bar{width:90px;height:8px;background:#eef0f4;border-radius:3px;flex:none}
.sg .bar span{display:block;height:8px;background:#4caf7a;border-radius:3px}
.warn{color:#a33}.muted{color:#889}.drop{color:#a33}.gain{color:#2a7}
.videos{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #dde;border-radius:6px;padding:.5em}
figure video{width:320px;max-width:100%;background:#000;display:block}
figcaption{font-size:.85em;margin-top:.3em;max-width:320px}
details{margin-top:1em}summary{cursor:pointer;font-weight:600}
"""


# ----------------------------------------------------------------------------- small formatters
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ci_text(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _ci_bar(rate: float | None, ci: Sequence[float] | None) -> str:
    if rate is None or not ci:
        return ""
    lo, hi = (max(0.0, min(1.0, float(v))) for v in ci)
    return (f'<div class="ci" title="95% Wilson interval {_ci_text(ci)} %">'
            f'<div class="r" style="left:{100 * lo:.1f}%;width:{100 * (hi - lo):.1f}%"></div>'
            f'<div class="p" style="left:calc({100 * rate:.1f}% - 1px)"></div></div>')


def _drop(points: float | None) -> str:
    if points is None:
        return ""
    change = -points if abs(points) >= 0.05 else 0.0
    cls = "drop" if change < 0 else "gain" if change > 0 else "muted"
    return f' <span class="{cls}">({change:+.1f} pt)</span>'


def _subgoal_bars(progress: Mapping[str, float]) -> str:
    if not progress:
        return '<span class="muted">–</span>'
    rows = []
    for atom, v in progress.items():
        v = max(0.0, min(1.0, float(v)))
        rows.append(f'<div class="sg" title="{_e(atom)}: held at the end of {100 * v:.0f}% of '
                    f'episodes"><div class="bar"><span style="width:{100 * v:.1f}%"></span></div>'
                    f'<span>{100 * v:.0f}%</span> <code>{_e(atom)}</code></div>')
    return "".join(rows)


def _not_built(t: Mapping[str, Any]) -> int:
    """Episodes of a task summary whose world could not be built: the runner's explicit
    ``not_built`` (a count or ``{"count": ...}``) when present, else ``not_run``'s
    ``world_error`` (or ``not_built``) count."""
    nb = t.get("not_built")
    if isinstance(nb, Mapping):
        return int(nb.get("count", 0))
    if nb is not None:
        return int(nb)
    reasons = t.get("not_run", {}).get("reasons", {})
    return int(reasons.get("world_error", 0)) + int(reasons.get("not_built", 0))


def _other_not_run(t: Mapping[str, Any]) -> int:
    """Episodes that ran into something other than building (unstable simulation, harness
    error): ``not_run`` minus its ``world_error`` / ``not_built`` entries."""
    nr = t.get("not_run", {})
    reasons = dict(nr.get("reasons", {}))
    reasons.pop("world_error", None)
    reasons.pop("not_built", None)
    return int(sum(int(v) for v in reasons.values()))


def _conditions(results: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any],
                                                             Mapping[str, Any]]]:
    """``[(name, tasks, suite)]``: the unperturbed condition, then every perturbation."""
    out = [(UNPERTURBED, results["tasks"], results["suite"])]
    for name, p in results["perturbations"].items():
        out.append((name, p["tasks"], p["suite"]))
    return out


# ----------------------------------------------------------------------------- sections
def _metadata(meta: Mapping[str, Any]) -> str:
    if not meta:
        return ""
    host = meta.get("host", {}) or {}
    items = [("mode", meta.get("mode")), ("code version", meta.get("code_version")),
             ("seeds", meta.get("seeds")), ("episodes per task", meta.get("episodes_per_task")),
             ("timestamp (UTC)", meta.get("timestamp")), ("host", host.get("hostname")),
             ("workers", meta.get("workers")),
             ("wall time", f"{float(meta.get('wall_time_s') or 0):.1f} s")]
    return '<p class="meta">' + " · ".join(
        f"{_e(k)}: <code>{_e(v)}</code>" for k, v in items if v is not None) + "</p>"


def _cards(results: Mapping[str, Any]) -> str:
    s = results["suite"]
    tasks = results["tasks"]
    nb = sum(_not_built(t) for t in tasks.values())
    other = sum(_other_not_run(t) for t in tasks.values())
    cards = [(_pct(s.get("mean_success")), "mean success over tasks (unperturbed)"),
             (_ci_text(s.get("pooled_ci95")) + " %", "pooled 95% Wilson interval"),
             (str(s.get("n_episodes", 0)), f"episodes counted over {s.get('n_tasks', 0)} tasks"),
             (str(nb), "episodes not built (excluded from success)"),
             (str(other), "episodes that did not run for other reasons (excluded)"),
             (str(len(results.get("skipped_tasks") or {})), "tasks skipped")]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{_e(v)}</div><div class="l">{_e(lab)}</div></div>'
        for v, lab in cards) + "</div>"


def _table(results: Mapping[str, Any]) -> str:
    perts = results["perturbations"]
    head = ["Task", "Success (95% CI)", "n", "Not built", "Other not run",
            "Per-subgoal progress", "Mean length", "Mean replans"] + list(perts)
    rows = []
    for task, t in results["tasks"].items():
        nb, other = _not_built(t), _other_not_run(t)
        cells = [f"<td><code>{_e(task)}</code></td>",
                 f'<td class="num">{_pct(t["success_rate"])} {_ci_text(t["ci95"])}'
                 f'{_ci_bar(t["success_rate"], t["ci95"])}</td>',
                 f'<td class="num">{t["n"]}</td>',
                 f'<td class="num{" warn" if nb else ""}">{nb}</td>',
                 f'<td class="num{" warn" if other else ""}">{other}</td>',
                 f"<td>{_subgoal_bars(t.get('subgoal_progress', {}))}</td>",
                 '<td class="num">' + ("–" if t.get("mean_length") is None
                                       else f"{t['mean_length']:.1f}") + "</td>",
                 f'<td class="num">{float(t.get("mean_replans", 0.0)):.2f}</td>']
        for p in perts.values():
            pt = p["tasks"].get(task)
            if pt is None:
                cells.append('<td class="muted">–</td>')
                continue
            pnb = _not_built(pt)
            extra = f' <span class="warn">({pnb} not built)</span>' if pnb else ""
            cells.append(f'<td class="num">{_pct(pt["success_rate"])} {_ci_text(pt["ci95"])}'
                         f'{_drop(pt.get("drop_points"))}{extra}'
                         f'{_ci_bar(pt["success_rate"], pt["ci95"])}</td>')
        rows.append(f'<tr data-task="{_e(task)}">' + "".join(cells) + "</tr>")
    s = results["suite"]
    foot = ["<td>suite mean</td>",
            f'<td class="num">{_pct(s.get("mean_success"))} {_ci_text(s.get("pooled_ci95"))}'
            "</td>", f'<td class="num">{s.get("n_episodes", 0)}</td>',
            f'<td class="num">{sum(_not_built(t) for t in results["tasks"].values())}</td>',
            f'<td class="num">{sum(_other_not_run(t) for t in results["tasks"].values())}</td>',
            "<td></td>", "<td></td>", "<td></td>"]
    for p in perts.values():
        ps = p["suite"]
        pnb = sum(_not_built(t) for t in p["tasks"].values())
        extra = f' <span class="warn">({pnb} not built)</span>' if pnb else ""
        foot.append(f'<td class="num">{_pct(ps.get("mean_success"))}'
                    f'{_drop(ps.get("drop_points"))}{extra}</td>')
    return ('<table id="success-table"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody><tfoot><tr>" + "".join(foot)
            + "</tr></tfoot></table>")


def _plot_svg(results: Mapping[str, Any]) -> str:
    """Inline SVG: suite mean success per condition (bars, pooled 95% CI whiskers) and each
    task's success (dots)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    conds = _conditions(results)
    names = [c[0] for c in conds]
    means = [100 * (c[2].get("mean_success") or 0.0) for c in conds]
    cis = [c[2].get("pooled_ci95") or [0.0, 1.0] for c in conds]
    lo = [max(0.0, m - 100 * ci[0]) for m, ci in zip(means, cis)]
    hi = [max(0.0, 100 * ci[1] - m) for m, ci in zip(means, cis)]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "robot-skills"}):
        fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) + 3.5), 3.4), dpi=100)
        xs = range(len(names))
        ax.bar(xs, means, yerr=[lo, hi], capsize=4, color="#9cc3e6", edgecolor="#1f5f99",
               label="suite mean (pooled 95% CI)")
        for i, (_, tasks, _) in enumerate(conds):
            rates = [100 * t["success_rate"] for t in tasks.values()
                     if t.get("success_rate") is not None]
            if rates:
                off = [(k - (len(rates) - 1) / 2) * min(0.5 / max(1, len(rates)), 0.06)
                       for k in range(len(rates))]
                ax.scatter([i + o for o in off], rates, s=10, color="#1d2430", zorder=3,
                           label="task" if i == 0 else None)
        for i, (_, tasks, suite) in enumerate(conds):
            nb = sum(_not_built(t) for t in tasks.values())
            text = f"{means[i]:.0f}%" + (f"\n{nb} not built" if nb else "")
            ax.text(i, 104, text, ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), names, rotation=20 if len(names) > 3 else 0, ha="right"
                      if len(names) > 3 else "center")
        ax.set_ylim(0, 118)
        ax.set_ylabel("success (%)")
        ax.set_title("Success per perturbation", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
    svg = buf.getvalue()
    start = svg.find("<svg")
    if start < 0:  # pragma: no cover - matplotlib always writes one
        raise RuntimeError("matplotlib wrote no <svg> element")
    return f'<div id="perturbation-plot">{svg[start:]}</div>'


def _video_entries(results: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``[(task, condition, task summary)]`` of every summary that names a video."""
    out = []
    for cname, tasks, _ in _conditions(results):
        for task, t in tasks.items():
            if t.get("video"):
                out.append((task, cname, t))
    return out


def _resolve_video(path: str, run_dir: Path | None) -> Path | None:
    """The video file: ``<run_dir>/videos/<name>`` first (a moved run dir keeps working), then
    the path as written."""
    p = Path(path)
    candidates = ([run_dir / "videos" / p.name, run_dir / p] if run_dir is not None else [])
    candidates.append(p)
    return next((c for c in candidates if c.is_file()), None)


def _episode_of(results: Mapping[str, Any], task: str, cond: str, video: str
                ) -> Mapping[str, Any] | None:
    for e in results.get("episodes", []):
        if e.get("task") == task and e.get("perturbation") == cond and e.get("video") == video:
            return e
    return None


def _videos(results: Mapping[str, Any], run_dir: Path | None, max_bytes: int) -> str:
    entries = _video_entries(results)
    if not entries:
        return '<p class="muted">No rollout videos in this run (eval.video=false?).</p>'
    used = 0
    figs, left_out = [], []
    for task, cond, t in entries:
        path = _resolve_video(str(t["video"]), run_dir)
        ep = _episode_of(results, task, cond, t["video"])
        caption = f"<code>{_e(task)}</code> — {_e(cond)}"
        if ep is not None:
            verdict = "success" if ep.get("success") else f"failure ({ep.get('reason', '?')})"
            caption += f"<br>seed {_e(ep.get('seed'))}, {_e(verdict)}, {_e(ep.get('steps'))} steps"
        rel = f"videos/{Path(str(t['video'])).name}"
        if path is None:
            left_out.append(f"<li><code>{_e(task)}</code> — {_e(cond)}: video file not found "
                            f"(<code>{_e(t['video'])}</code>)</li>")
            continue
        size = path.stat().st_size
        if used + size > max_bytes:
            left_out.append(f'<li><code>{_e(task)}</code> — {_e(cond)}: left out, embedding its '
                            f"{size / 2**20:.2f} MiB would pass the {max_bytes / 2**20:.1f} MiB cap "
                            f'on embedded video (file: <a href="{_e(rel)}">{_e(rel)}</a>; raise '
                            f"the cap with <code>rs-report --max-video-mb</code>)</li>")
            continue
        used += size
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figs.append(f'<figure><video controls muted loop playsinline preload="metadata" '
                    f'data-task="{_e(task)}" data-condition="{_e(cond)}" '
                    f'src="data:video/mp4;base64,{data}"></video>'
                    f"<figcaption>{caption}</figcaption></figure>")
    out = (f'<p class="meta">{len(figs)} of {len(entries)} videos embedded '
           f"({used / 2**20:.2f} MiB of a {max_bytes / 2**20:.1f} MiB cap).</p>")
    out += '<div class="videos">' + "".join(figs) + "</div>"
    if left_out:
        out += ('<p class="warn">Videos not embedded:</p><ul id="videos-left-out">'
                + "".join(left_out) + "</ul>")
    return out


def _problems(results: Mapping[str, Any]) -> str:
    parts = []
    skipped = results.get("skipped_tasks") or {}
    if skipped:
        parts.append("<h3>Skipped tasks</h3><ul>" + "".join(
            f"<li><code>{_e(n)}</code>: {_e(err)}</li>" for n, err in skipped.items()) + "</ul>")
    lines = []
    for cname, tasks, _ in _conditions(results):
        for task, t in tasks.items():
            nr = t.get("not_run", {})
            nb = _not_built(t)
            if nr.get("count") or nb:
                errs = "; ".join(t.get("failures", {}).get("errors", [])[:2])
                lines.append(f"<li><code>{_e(task)}</code> — {_e(cname)}: "
                             f"{nb} not built, reasons {_e(nr.get('reasons', {}))}, seeds "
                             f"{_e(nr.get('seeds', []))}"
                             + (f'<br><span class="muted">{_e(errs)}</span>' if errs else "")
                             + "</li>")
    if lines:
        parts.append("<h3>Episodes not built or not run (not counted as policy failures)</h3>"
                     "<ul>" + "".join(lines) + "</ul>")
    fails = []
    for task, t in results["tasks"].items():
        f = t.get("failures", {})
        if f.get("reasons"):
            calls = f.get("failed_calls") or {}
            fails.append(f"<li><code>{_e(task)}</code>: {_e(f['reasons'])}"
                         + (f"; failed calls: {_e(calls)}" if calls else "") + "</li>")
    if fails:
        parts.append("<h3>Failure reasons (unperturbed)</h3><ul>" + "".join(fails) + "</ul>")
    return "".join(parts) or '<p class="muted">None: every episode was built and ran.</p>'


def _perturbation_specs(results: Mapping[str, Any]) -> str:
    perts = results["perturbations"]
    if not perts:
        return ""
    items = []
    for name, p in perts.items():
        spec = {k: v for k, v in (p.get("spec") or {}).items()
                if v not in (None, False, 0, 0.0, [], {}, "") and k != "name"}
        items.append(f"<li><b>{_e(name)}</b>: <code>{_e(json.dumps(spec, default=str))}</code>"
                     "</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _episodes(results: Mapping[str, Any]) -> str:
    eps = results.get("episodes", [])
    rows = "".join(
        f"<tr><td><code>{_e(e.get('task'))}</code></td><td>{_e(e.get('perturbation'))}</td>"
        f'<td class="num">{_e(e.get("seed"))}</td><td>{"yes" if e.get("success") else "no"}</td>'
        f"<td>{_e(e.get('reason'))}</td><td class=\"num\">{_e(e.get('steps'))}</td>"
        f'<td class="num">{_e(e.get("replans", 0))}</td></tr>' for e in eps)
    return (f"<details><summary>All {len(eps)} episodes</summary><table><thead><tr><th>Task</th>"
            "<th>Condition</th><th>Seed</th><th>Success</th><th>Reason</th><th>Steps</th>"
            f"<th>Replans</th></tr></thead><tbody>{rows}</tbody></table></details>")


# ----------------------------------------------------------------------------- public API
def format_html(results: Mapping[str, Any], run_dir: str | Path | None = None, *,
                max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES) -> str:
    """The report page of a runner results dict, as one HTML string.

    Args:
        results: the body of ``results.json`` (see
            :func:`robot_skills.evaluation.runner.summarize`).
        run_dir: the run directory, where ``videos/`` is looked up; ``None`` uses the video
            paths as written in ``results``.
        max_video_bytes: cap on the summed size of the embedded mp4 files, bytes (>= 0; 0
            embeds none). Videos past it are listed as left out.

    Raises:
        ValueError: if ``results`` lacks the runner's keys (``tasks``, ``suite``,
            ``perturbations``) or ``max_video_bytes < 0``.
    """
    for key in ("tasks", "suite", "perturbations"):
        if key not in results:
            raise ValueError(f"not a benchmark results dict: missing key {key!r}")
    if int(max_video_bytes) < 0:
        raise ValueError(f"max_video_bytes must be >= 0, got {max_video_bytes}")
    rd = Path(run_dir) if run_dir is not None else None
    meta = results.get("metadata", {}) or {}
    title = f"Benchmark results ({meta.get('mode', 'composed')})"
    if rd is not None:
        title += f" — {rd.resolve().name}"
    body = [f"<h1>{_e(title)}</h1>", _metadata(meta), _cards(results),
            "<h2>Success per task</h2>",
            '<p class="meta">Success rate with its Wilson 95% interval (bar: interval, tick: '
            "rate). Episodes not built (the world could not be laid out) or that did not run "
            "(unstable simulation, harness error) are counted apart and left out of the rates. "
            "Subgoal bars: fraction of episodes in which each goal atom held at the end. "
            "Perturbation columns: success under the perturbation and the change in points from "
            "the unperturbed column.</p>",
            _table(results), _perturbation_specs(results),
            "<h2>Success per perturbation</h2>", _plot_svg(results),
            "<h2>Rollout videos</h2>", _videos(results, rd, int(max_video_bytes)),
            "<h2>Problems</h2>", _problems(results),
            "<h2>Episodes</h2>", _episodes(results)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def write_html(results: Mapping[str, Any], path: str | Path, *, run_dir: str | Path | None = None,
               max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES) -> Path:
    """Write :func:`format_html` to ``path`` atomically; ``run_dir`` defaults to its folder.

    Raises:
        ValueError: see :func:`format_html`. OSError: ``path`` cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rd = Path(run_dir) if run_dir is not None else path.parent
    atomic_write_text(path, format_html(results, rd, max_video_bytes=max_video_bytes))
    return path


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """Read ``<run_dir>/results.json``.

    Raises:
        FileNotFoundError: no such file. ValueError: not JSON, or not a runner results dict
            (the file is named).
    """
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {run_dir} (run rs-eval first, or give the "
                                f"run's eval_<policy> directory)")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(results, dict) or not all(k in results for k in
                                                ("tasks", "suite", "perturbations")):
        raise ValueError(f"{path} is not a benchmark results file (needs tasks, suite, "
                         f"perturbations)")
    return results


def write_run_report(run_dir: str | Path, *, max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES
                     ) -> Path:
    """(Re)write ``<run_dir>/report.html`` from ``<run_dir>/results.json``; returns its path.

    Raises:
        FileNotFoundError / ValueError: see :func:`load_results` and :func:`format_html`.
    """
    rd = Path(run_dir)
    return write_html(load_results(rd), rd / REPORT_NAME, run_dir=rd,
                      max_video_bytes=max_video_bytes)
