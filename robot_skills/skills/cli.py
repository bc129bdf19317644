"""``rs-library``: inspect and govern a skill library.

Commands (``--root`` is the library directory, e.g. ``<run_dir>/skills``)::

    rs-library --root LIB list [--min-tier supervised]
    rs-library --root LIB show pick[@1.1.0]
    rs-library --root LIB verify [pick[@1.1.0]]
    rs-library --root LIB diff pick@1.0.0 pick@1.1.0
    rs-library --root LIB promote pick@1.1.0 --to supervised --evaluator MODULE:CALLABLE \\
        [--evaluator-arg key=value ...] [--threshold 0.8] [--episodes 20] [--seed0 0] \\
        [--max-drop 0.0]
    rs-library --root LIB retire pick@1.0.0 --reason "superseded by 1.1.0"
    rs-library --root LIB search "put the bowl on the plate" | --goal "on bowl_1 plate_1"

``promote`` runs the admission gate (:mod:`robot_skills.skills.governance`) with the evaluator
``MODULE:CALLABLE``: an object with ``skill`` / ``composed`` methods, or a factory called with the
``--evaluator-arg`` pairs as keyword arguments (strings) that returns one.

Exit status: 0 on success; 1 when ``verify`` finds a refused skill or a promotion / retirement is
refused; 2 on bad usage (argparse). Errors are printed to stderr, naming the input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from robot_skills.skills.governance import (
    GateConfig,
    PromotionError,
    RetirementError,
    diff_contracts,
    promote,
    retire,
)
from robot_skills.skills.library import SkillLibrary, SkillVersion, TrustTierError, split_entry
from robot_skills.skills.skill_dir import TRUST_TIERS, dump_contract


def _ref(lib: SkillLibrary, ref: str) -> SkillVersion:
    """``name`` (the newest non-retired version, any tier) or ``name@version``."""
    name, ver = split_entry(ref)
    if ver is None:
        return lib.resolve(name, "sim")
    hit = [v for v in lib.versions(name) if v.version == ver]
    if not hit:
        raise KeyError(f"skill {name!r} has no version {ver!r}; versions: "
                       f"{[v.version for v in lib.versions(name)]}")
    return hit[0]


def load_evaluator(spec: str, kwargs: dict[str, str]) -> Any:
    """Import ``MODULE:CALLABLE``; call it with ``kwargs`` unless it already is an evaluator.

    Raises:
        ValueError: malformed spec, missing attribute, or an object without ``skill`` /
            ``composed``.
    """
    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"--evaluator must be MODULE:CALLABLE, got {spec!r}")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load evaluator {spec!r}: {e}") from e
    if not (hasattr(obj, "skill") and hasattr(obj, "composed")):
        obj = obj(**kwargs)
    if not (callable(getattr(obj, "skill", None)) and callable(getattr(obj, "composed", None))):
        raise ValueError(f"evaluator {spec!r} has no skill()/composed() methods")
    return obj


def _kv(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise ValueError(f"--evaluator-arg must be key=value, got {p!r}")
        out[k] = v
    return out


def _fmt(v: Any) -> str:
    return json.dumps(v, default=str) if not isinstance(v, str) else v


def _cmd_list(lib: SkillLibrary, a: argparse.Namespace) -> int:
    rows = [("skill", "version", "tier", "kind", "retired", "success", f"used@{a.min_tier}")]
    for n in lib.list():
        try:
            chosen = lib.resolve(n, a.min_tier).version
        except (TrustTierError, ValueError, KeyError):
            chosen = None
        try:
            vs = lib.versions(n)
        except (ValueError, KeyError) as e:
            rows.append((n, "?", "?", "?", "?", "?", f"error: {e}"))
            continue
        for v in vs:
            gate = (v.manifest.get("evaluation") or {}).get("gate") or {}
            succ = gate.get("skill_success")
            rows.append((n, v.version, v.tier, v.manifest["adapter"]["kind"],
                         "yes" if v.retired else "", "" if succ is None else f"{succ:.2f}",
                         "*" if v.version == chosen else ""))
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)).rstrip())
    return 0


def _cmd_show(lib: SkillLibrary, a: argparse.Namespace) -> int:
    print(dump_contract(_ref(lib, a.skill).manifest), end="")
    return 0


def _cmd_verify(lib: SkillLibrary, a: argparse.Namespace) -> int:
    if a.skill:
        v = _ref(lib, a.skill)
        try:
            lib.verify_entry(v.entry)
            report = {v.entry: "ok"}
        except (ValueError, KeyError, OSError) as e:
            report = {v.entry: str(e)}
    else:
        report = lib.verify_all()
    for k, msg in report.items():
        print(f"{k}: {msg}")
    bad = [k for k, m in report.items() if m != "ok"]
    if bad:
        print(f"{len(bad)} refused: {bad}", file=sys.stderr)
        return 1
    return 0


def _cmd_diff(lib: SkillLibrary, a: argparse.Namespace) -> int:
    va, vb = _ref(lib, a.a), _ref(lib, a.b)
    d = diff_contracts(va.manifest, vb.manifest)
    for k, x, y in d:
        print(f"{k}:\n  {va}: {_fmt(x)}\n  {vb}: {_fmt(y)}")
    if not d:
        print(f"{va} and {vb} have identical contracts")
    return 0


def _cmd_promote(lib: SkillLibrary, a: argparse.Namespace) -> int:
    name, ver = split_entry(a.skill)
    if ver is None:
        raise ValueError(f"promote needs an exact version: {name}@MAJOR.MINOR.PATCH")
    ev = load_evaluator(a.evaluator, _kv(a.evaluator_arg))
    cfg = GateConfig(threshold=a.threshold, episodes=a.episodes, seed0=a.seed0,
                     max_drop=a.max_drop)
    m = promote(lib, name, ver, a.to, ev, cfg)
    g = m["evaluation"]["gate"]
    print(f"promoted {name}@{ver} to {a.to!r}: skill success {g['skill_success']:.3f} over "
          f"{g['skill_episodes']} episodes; composed {g['composed'].get('candidate_mean')} vs "
          f"incumbent {g['composed'].get('incumbent_version')} "
          f"{g['composed'].get('incumbent_mean')}")
    return 0


def _cmd_retire(lib: SkillLibrary, a: argparse.Namespace) -> int:
    name, ver = split_entry(a.skill)
    if ver is None:
        raise ValueError(f"retire needs an exact version: {name}@MAJOR.MINOR.PATCH")
    retire(lib, name, ver, a.reason)
    print(f"retired {name}@{ver}")
    return 0


def _cmd_search(lib: SkillLibrary, a: argparse.Namespace) -> int:
    from robot_skills.skills.retrieval import rank_skills

    goal = a.goal.split(";") if a.goal else None
    for r in rank_skills(lib.contracts, instruction=a.instruction, goal=goal)[:a.top]:
        print(f"{r.name:24s} score {r.score:.3f}  text {r.text_score:.3f}  "
              f"effects {r.effect_score:.3f}  {r.matched}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``rs-library`` argument parser."""
    p = argparse.ArgumentParser(prog="rs-library", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="skill library directory")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("list", help="every version of every skill with its tier")
    s.add_argument("--min-tier", default="sim", choices=TRUST_TIERS,
                   help="mark the version a caller requiring this tier gets")
    s = sub.add_parser("show", help="print a version's contract")
    s.add_argument("skill", help="name or name@version")
    s = sub.add_parser("verify", help="verify every file (or one version)")
    s.add_argument("skill", nargs="?")
    s = sub.add_parser("diff", help="differences of two contracts")
    s.add_argument("a")
    s.add_argument("b")
    s = sub.add_parser("promote", help="promote one tier up behind the admission gate")
    s.add_argument("skill", help="name@version")
    s.add_argument("--to", required=True, choices=TRUST_TIERS[1:])
    s.add_argument("--evaluator", required=True, help="MODULE:CALLABLE")
    s.add_argument("--evaluator-arg", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--threshold", type=float, default=0.8)
    s.add_argument("--episodes", type=int, default=20)
    s.add_argument("--seed0", type=int, default=0)
    s.add_argument("--max-drop", type=float, default=0.0)
    s = sub.add_parser("retire", help="retire a version (kept on disk, never resolved)")
    s.add_argument("skill", help="name@version")
    s.add_argument("--reason", required=True)
    s = sub.add_parser("search", help="rank skills for an instruction and/or goal atoms")
    s.add_argument("instruction", nargs="?")
    s.add_argument("--goal", help="goal atoms separated by ';', e.g. 'on bowl_1 plate_1'")
    s.add_argument("--top", type=int, default=5)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rs-library``; returns the exit status."""
    a = build_parser().parse_args(argv)
    cmds = {"list": _cmd_list, "show": _cmd_show, "verify": _cmd_verify, "diff": _cmd_diff,
            "promote": _cmd_promote, "retire": _cmd_retire, "search": _cmd_search}
    try:
        lib = SkillLibrary(a.root)
        return cmds[a.cmd](lib, a)
    except (PromotionError, RetirementError, TrustTierError, FileNotFoundError, KeyError,
            ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"rs-library {a.cmd}: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1


def main_exit() -> None:
    """Console-script entry point: :func:`main` with its status passed to ``sys.exit``."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    main_exit()
