"""Human-readable reports of a benchmark ``results.json``: Markdown table, console table, plot.

Columns: task | success (Wilson 95% CI) | n | per-subgoal progress | mean length (control steps),
then, per perturbation, its success next to the unperturbed column with the drop in points
(LIBERO-Plus style: how much a policy loses when the scene is perturbed).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from robot_skills.utils.atomic import atomic_temp_path, atomic_write_text

__all__ = ["format_markdown", "write_markdown", "format_table", "print_table", "plot_success"]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ci(ci: Any) -> str:
    return f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _subgoals(progress: Mapping[str, float]) -> str:
    return "; ".join(f"{a} {v:.2f}" for a, v in progress.items()) or "–"


def _drop(points: float | None) -> str:
    if points is None:
        return ""
    change = -points if abs(points) >= 0.05 else 0.0  # no "-0.0"
    return f" ({change:+.1f} pt)"


def _check(results: Mapping[str, Any]) -> None:
    for key in ("tasks", "suite", "perturbations"):
        if key not in results:
            raise ValueError(f"not a benchmark results dict: missing key {key!r}")


def format_markdown(results: Mapping[str, Any]) -> str:
    """The Markdown report as a string (see :func:`write_markdown`).

    Raises:
        ValueError: if ``results`` lacks the runner's keys.
    """
    _check(results)
    meta = results.get("metadata", {})
    perts = results["perturbations"]
    lines = [f"# Benchmark results ({meta.get('mode', 'composed')})", ""]
    if meta:
        lines += [f"- code version: `{meta.get('code_version', '?')}`",
                  f"- seeds: {meta.get('seeds')}  (episodes per task: "
                  f"{meta.get('episodes_per_task')})",
                  f"- timestamp: {meta.get('timestamp')}; host: "
                  f"{meta.get('host', {}).get('hostname', '?')}; workers: {meta.get('workers')}; "
                  f"wall time: {meta.get('wall_time_s', 0):.1f} s", ""]
    header = ["Task", "Success (95% CI)", "n", "Per-subgoal progress", "Mean length"]
    header += [f"{name}" for name in perts]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    for task, t in results["tasks"].items():
        row = [task, f"{_pct(t['success_rate'])} {_ci(t['ci95'])}", str(t["n"]),
               _subgoals(t["subgoal_progress"]),
               "–" if t["mean_length"] is None else f"{t['mean_length']:.1f}"]
        for p in perts.values():
            pt = p["tasks"].get(task)
            row.append("–" if pt is None else
                       f"{_pct(pt['success_rate'])} {_ci(pt['ci95'])}{_drop(pt['drop_points'])}")
        lines.append("| " + " | ".join(row) + " |")
    s = results["suite"]
    row = ["**suite mean**", f"**{_pct(s['mean_success'])}**", str(s["n_episodes"]), "", ""]
    for p in perts.values():
        ps = p["suite"]
        row.append(f"**{_pct(ps['mean_success'])}**{_drop(ps['drop_points'])}")
    lines.append("| " + " | ".join(row) + " |")
    if perts:
        lines += ["", "Perturbation columns: success on the perturbed task, and in parentheses the "
                  "change in points from the unperturbed column."]
        for name, p in perts.items():
            spec = p["spec"]
            lines.append(f"- **{name}**: shift {spec['region_shift']} m, scale "
                         f"{spec['region_scale']}, distractors {spec['distractors']}, swap "
                         f"{spec['swap_instances']}")
    skipped = results.get("skipped_tasks") or {}
    if skipped:
        lines += ["", "## Skipped tasks", ""]
        lines += [f"- `{name}`: {err}" for name, err in skipped.items()]
    not_run = _not_run_lines(results)
    if not_run:
        lines += ["", "## Episodes that did not run (not counted as policy failures)", ""]
        lines += [f"- {line}" for line in not_run]
    fails = {task: t["failures"]["reasons"] for task, t in results["tasks"].items()
             if t["failures"]["reasons"]}
    if fails:
        lines += ["", "## Failure reasons (unperturbed)", ""]
        for task, reasons in fails.items():
            calls = results["tasks"][task]["failures"]["failed_calls"]
            extra = f"; failed calls: {calls}" if calls else ""
            lines.append(f"- {task}: {reasons}{extra}")
    return "\n".join(lines) + "\n"


def write_markdown(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write the Markdown report of ``results`` (a runner results dict) to ``path``.

    Raises:
        ValueError: if ``results`` lacks the runner's keys.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, format_markdown(results))
    return path


def format_table(results: Mapping[str, Any]) -> str:
    """A fixed-width console table: task, success with CI, n, mean length, perturbation columns."""
    _check(results)
    perts = list(results["perturbations"].items())
    rows = [["task", "success [95% CI]", "n", "mean len"] + [n for n, _ in perts]]
    for task, t in results["tasks"].items():
        row = [task, f"{_pct(t['success_rate'])} {_ci(t['ci95'])}", str(t["n"]),
               "–" if t["mean_length"] is None else f"{t['mean_length']:.0f}"]
        for _, p in perts:
            pt = p["tasks"].get(task)
            row.append("–" if pt is None else f"{_pct(pt['success_rate'])}"
                       f"{_drop(pt['drop_points'])}")
        rows.append(row)
    s = results["suite"]
    rows.append(["SUITE MEAN", _pct(s["mean_success"]), str(s["n_episodes"]), ""]
                + [f"{_pct(p['suite']['mean_success'])}{_drop(p['suite']['drop_points'])}"
                   for _, p in perts])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    out = [fmt(rows[0]), sep] + [fmt(r) for r in rows[1:-1]] + [sep, fmt(rows[-1])]
    skipped = results.get("skipped_tasks") or {}
    out += [f"skipped {name}: {err}" for name, err in skipped.items()]
    out += _not_run_lines(results)
    return "\n".join(out)


def _not_run_lines(results: Mapping[str, Any]) -> list[str]:
    """One line per task and condition with episodes that did not run (world error, invalid)."""
    conds = [("", results["tasks"])] + [(f" [{n}]", p["tasks"])
                                        for n, p in results["perturbations"].items()]
    out = []
    for label, tasks in conds:
        for task, t in tasks.items():
            nr = t.get("not_run") or {}
            if nr.get("count"):
                out.append(f"not run{label} {task}: {nr['count']} episode(s) {nr['reasons']} "
                           f"seeds {nr['seeds']}")
    return out


def print_table(results: Mapping[str, Any], file: TextIO | None = None) -> None:
    """Print :func:`format_table` to ``file`` (stdout by default)."""
    print(format_table(results), file=file or sys.stdout)


def plot_success(results: Mapping[str, Any], path: str | Path) -> Path:
    """Bar chart of per-task success with Wilson 95% CI error bars (one bar group per condition),
    saved as PNG with matplotlib's Agg backend.

    Raises:
        ValueError: if ``results`` lacks the runner's keys.
    """
    _check(results)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(results["tasks"])
    conds = [("unperturbed", results["tasks"])] + [
        (name, p["tasks"]) for name, p in results["perturbations"].items()]
    x = np.arange(len(tasks))
    width = 0.8 / max(1, len(conds))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(tasks) + 2), 4.5))
    for k, (name, tdict) in enumerate(conds):
        rates = np.array([np.nan if t not in tdict or tdict[t]["success_rate"] is None
                          else tdict[t]["success_rate"] for t in tasks])
        lo = np.array([tdict[t]["ci95"][0] if t in tdict else np.nan for t in tasks])
        hi = np.array([tdict[t]["ci95"][1] if t in tdict else np.nan for t in tasks])
        err = np.vstack([np.clip(rates - lo, 0, None), np.clip(hi - rates, 0, None)])
        ax.bar(x + (k - (len(conds) - 1) / 2) * width, rates, width, yerr=err, capsize=3,
               label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([t if len(t) <= 28 else t[:26] + "…" for t in tasks], rotation=35,
                       ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (Wilson 95% CI)")
    ax.set_title(f"Per-task success ({results.get('metadata', {}).get('mode', 'composed')})")
    if len(conds) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_temp_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
