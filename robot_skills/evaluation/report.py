"""Human-readable reports of a benchmark ``results.json``: Markdown table, console table, plot.

Columns: task | success (Wilson 95% CI) | n | per-subgoal progress | mean length (control steps),
then, per perturbation, its success next to the unperturbed column with the drop in points
(LIBERO-Plus style: how much a policy loses when the scene is perturbed), then "Built / requested".

Episodes whose world could not be built (status ``not_built``) are neither successes nor
failures: rates are over built episodes (``n``), every condition shows "n built / n requested"
(a perturbation cell adds "· b/r built" when some were not built), and the reasons are listed.
Drops in points compare the seeds built in both conditions (see
:func:`robot_skills.evaluation.runner.summarize`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from robot_skills.evaluation.perturbations import RESOLUTION_MARK, PerturbationSpec
from robot_skills.utils.atomic import atomic_temp_path, atomic_write_text

UNPERTURBED_LABEL = "unperturbed"

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


def _built(t: Mapping[str, Any]) -> str:
    """``"n built/n requested"`` of a task or suite summary (older results: ``n`` + not run)."""
    req = t.get("n_requested")
    if req is None:  # results written before n_requested existed
        n = t.get("n", t.get("n_episodes", 0))
        req = n + (t.get("not_run") or {}).get("count", t.get("n_not_run", 0))
        return f"{req - (t.get('not_run') or {}).get('reasons', {}).get('world_error', 0)}/{req}"
    return f"{t['n_built']}/{req}"


def _built_note(t: Mapping[str, Any]) -> str:
    """`` · b/r built`` when some episodes of a condition were not built, else ``""``."""
    req, built = t.get("n_requested"), t.get("n_built")
    return "" if req is None or built == req else f" · {built}/{req} built"


def _spec_text(spec: Mapping[str, Any]) -> str:
    """The axes a perturbation spec changes, as ``field value`` pairs."""
    default = PerturbationSpec("_").to_dict()
    parts = []
    for k, v in spec.items():
        if k in ("name", "seed", "description") or k not in default:
            continue
        if (list(v) if isinstance(v, tuple) else v) != default[k]:
            parts.append(f"{k} {v}")
    return ", ".join(parts) or "no change"


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
    header += ["Built / requested"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    for task, t in results["tasks"].items():
        row = [task, f"{_pct(t['success_rate'])} {_ci(t['ci95'])}", str(t["n"]),
               _subgoals(t["subgoal_progress"]),
               "–" if t["mean_length"] is None else f"{t['mean_length']:.1f}"]
        for p in perts.values():
            pt = p["tasks"].get(task)
            row.append("–" if pt is None else
                       f"{_pct(pt['success_rate'])} {_ci(pt['ci95'])}{_drop(pt['drop_points'])}"
                       f"{_built_note(pt)}")
        row.append(_built(t))
        lines.append("| " + " | ".join(row) + " |")
    s = results["suite"]
    row = ["**suite mean**", f"**{_pct(s['mean_success'])}**", str(s["n_episodes"]), "", ""]
    for p in perts.values():
        ps = p["suite"]
        row.append(f"**{_pct(ps['mean_success'])}**{_drop(ps['drop_points'])}{_built_note(ps)}")
    row.append(f"**{_built(s)}**")
    lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Success rates are over built episodes (n); \"Built / requested\" counts the "
              "unperturbed episodes whose world could be built. Episodes not built are neither "
              "successes nor failures."]
    if perts:
        lines += ["", "Perturbation columns: success on the perturbed task over its built "
                  "episodes, in parentheses the change in points from the unperturbed column over "
                  "the seeds built in both, and \"· b/r built\" when some were not built."]
        for name, p in perts.items():
            ps = p["suite"]
            built = (f"; built {ps['n_built']}/{ps['n_requested']}"
                     if ps.get("n_requested") is not None else "")
            if ps.get("n_layout_resolved"):
                built += (f"; layout resolved (a region moved on to free table area) in "
                          f"{ps['n_layout_resolved']} episode(s)")
            lines.append(f"- **{name}**: {_spec_text(p['spec'])}{built}")
    nb = _not_built_lines(results)
    if nb:
        lines += ["", "## Episodes not built (excluded from success rates)", ""]
        lines += [f"- {line}" for line in nb]
    moved = _resolution_lines(results)
    if moved:
        lines += ["", "## Layout resolution under perturbations", "",
                  "Shifted object regions that would have overlapped a fixture, the table edge or "
                  "another object were moved the shortest further distance to free table area "
                  "(docs/perturbations.md):", ""]
        lines += [f"- {line}" for line in moved]
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
    rows = [["task", "success [95% CI]", "n", "mean len"] + [n for n, _ in perts] + ["built"]]
    for task, t in results["tasks"].items():
        row = [task, f"{_pct(t['success_rate'])} {_ci(t['ci95'])}", str(t["n"]),
               "–" if t["mean_length"] is None else f"{t['mean_length']:.0f}"]
        for _, p in perts:
            pt = p["tasks"].get(task)
            row.append("–" if pt is None else f"{_pct(pt['success_rate'])}"
                       f"{_drop(pt['drop_points'])}{_built_note(pt)}")
        rows.append(row + [_built(t)])
    s = results["suite"]
    rows.append(["SUITE MEAN", _pct(s["mean_success"]), str(s["n_episodes"]), ""]
                + [f"{_pct(p['suite']['mean_success'])}{_drop(p['suite']['drop_points'])}"
                   f"{_built_note(p['suite'])}" for _, p in perts] + [_built(s)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    out = [fmt(rows[0]), sep] + [fmt(r) for r in rows[1:-1]] + [sep, fmt(rows[-1])]
    skipped = results.get("skipped_tasks") or {}
    out += [f"skipped {name}: {err}" for name, err in skipped.items()]
    out += _not_run_lines(results)
    out += _not_built_lines(results)
    return "\n".join(out)


def _resolution_lines(results: Mapping[str, Any], per_condition: int = 8) -> list[str]:
    """Distinct layout-resolution notes ("moved a further ...") per perturbation and task."""
    out = []
    for name, p in results["perturbations"].items():
        k = 0
        for task, t in p["tasks"].items():
            for note in t.get("perturbation_notes") or []:
                if RESOLUTION_MARK in note and k < per_condition:
                    out.append(f"[{name}] {task}: {note.split(': ', 1)[-1]}")
                    k += 1
    return out


def _not_built_lines(results: Mapping[str, Any]) -> list[str]:
    """Per condition: built/requested with the reasons, and one line per task with not-built
    episodes (their count, exception types and seeds)."""
    conds = [(UNPERTURBED_LABEL, results["suite"], results["tasks"])] + [
        (n, p["suite"], p["tasks"]) for n, p in results["perturbations"].items()]
    out = []
    for label, suite, tasks in conds:
        if not suite.get("n_not_built"):
            continue
        out.append(f"not built [{label}]: {suite['n_not_built']} of {suite['n_requested']} "
                   f"episode(s) {suite.get('not_built_reasons', {})}")
        for task, t in tasks.items():
            nb = t.get("not_built") or {}
            if nb.get("count"):
                out.append(f"not built [{label}] {task}: {nb['count']}/{t['n_requested']} "
                           f"{nb['reasons']} seeds {nb['seeds']}")
    return out


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
