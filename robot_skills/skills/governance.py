"""Governance of a skill library: promotion through trust tiers behind an admission gate,
retirement, and contract diffs.

Trust tiers (:data:`~robot_skills.skills.skill_dir.TRUST_TIERS`): ``sim`` -> ``supervised`` ->
``autonomous``, one step at a time. :func:`promote` runs the **admission gate** first:

1. the candidate version's files verify (hashes, base hash, weights build);
2. its seeded sim evaluation succeeds in at least ``threshold`` of ``>= min_episodes`` episodes;
3. it does not lower the composed success of the suite tasks that use it: the same tasks and
   seeds are run with the candidate pinned and with the *incumbent* pinned (the version callers
   requiring the target tier get now, else the version callers at the candidate's tier get), and
   the candidate's mean task success may be at most ``max_drop`` below the incumbent's. With no
   incumbent (the skill's first version) only the candidate's composed figures are recorded.

The evaluation itself is injected (:class:`Evaluator`): tests pass fast functions; the CLI loads
one by ``module:callable`` (a sim-backed one lives outside ``robot_skills``, which never imports
``sim``). A passed gate writes its verdict and figures into the contract (``evaluation.gate``), the
new tier and a ``history`` entry, in one atomic rewrite of ``skill.yaml``. A failed gate, failed
evaluation, or a refused retirement raises and changes nothing on disk.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from robot_skills.skills.library import SkillLibrary, SkillVersion, tier_rank
from robot_skills.skills.skill_dir import TRUST_TIERS, read_manifest, update_manifest
from robot_skills.utils.version import code_version


class PromotionError(ValueError):
    """A promotion was refused (gate failed, bad tier step, retired or unknown version).

    Attributes:
        record: the gate's verdict and figures when the gate ran, else None.
    """

    def __init__(self, msg: str, record: Mapping[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.record = dict(record) if record is not None else None


class RetirementError(ValueError):
    """A retirement was refused (unknown or already retired version)."""


class Evaluator(Protocol):
    """Seeded sim evaluation used by the admission gate.

    ``skill`` runs the skill alone (its own scenes / calls): one success flag per seed.
    ``composed`` runs the suite tasks that use the skill, with ``pins`` (skill name -> version)
    forcing the versions used: task name -> one success flag per seed, in ``seeds`` order.
    """

    def skill(self, library: SkillLibrary, version: SkillVersion,
              seeds: Sequence[int]) -> Sequence[bool]: ...

    def composed(self, library: SkillLibrary, pins: Mapping[str, str],
                 seeds: Sequence[int]) -> Mapping[str, Sequence[bool]]: ...


@dataclass
class GateConfig:
    """Admission-gate settings.

    Attributes:
        threshold: least skill success rate, in [0, 1].
        episodes: seeded episodes of the skill evaluation (and of each composed task), >= 20.
        seed0: first seed; seeds are ``seed0 .. seed0 + episodes - 1``.
        max_drop: largest allowed drop of the mean composed task success vs the incumbent,
            in [0, 1] (0 = must not be lower).
        min_episodes: the floor on ``episodes`` (the issue's 20).
    """

    threshold: float = 0.8
    episodes: int = 20
    seed0: int = 0
    max_drop: float = 0.0
    min_episodes: int = 20

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"gate threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 <= self.max_drop <= 1.0:
            raise ValueError(f"gate max_drop must be in [0, 1], got {self.max_drop}")
        if self.episodes < self.min_episodes:
            raise ValueError(f"the admission gate needs >= {self.min_episodes} episodes, got "
                             f"{self.episodes}")

    @property
    def seeds(self) -> list[int]:
        """The evaluation seeds."""
        return list(range(self.seed0, self.seed0 + self.episodes))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _flags(xs: Sequence[Any], n: int, what: str) -> list[bool]:
    out = [bool(x) for x in xs]
    if len(out) != n:
        raise PromotionError(f"{what} returned {len(out)} results for {n} seeds")
    return out


def incumbent(library: SkillLibrary, cand: SkillVersion, to_tier: str) -> SkillVersion | None:
    """The version the candidate is compared with: the newest non-retired other version at or
    above ``to_tier``, else at or above the candidate's tier; None if there is none."""
    others = [v for v in library.versions(cand.name) if v.version != cand.version
              and not v.retired]
    for need in (to_tier, cand.tier):
        ok = [v for v in others if tier_rank(v.tier) >= tier_rank(need)]
        if ok:
            return ok[-1]
    return None


@dataclass
class GateResult:
    """The gate's verdict and figures (written into the contract as ``evaluation.gate``)."""

    candidate: str
    to_tier: str
    passed: bool
    reasons: list[str]
    config: dict[str, Any]
    skill_success: float
    skill_episodes: int
    composed: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=_now)
    code_version: str = field(default_factory=code_version)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML ready)."""
        return asdict(self)


def run_gate(library: SkillLibrary, cand: SkillVersion, to_tier: str, evaluator: Evaluator,
             cfg: GateConfig) -> GateResult:
    """Run the admission gate for ``cand`` (writes nothing).

    Raises:
        PromotionError: an evaluator returned the wrong number of results.
        Whatever the evaluator raises.
    """
    seeds = cfg.seeds
    flags = _flags(evaluator.skill(library, cand, seeds), len(seeds), "skill evaluation")
    rate = sum(flags) / len(flags)
    reasons: list[str] = []
    if rate < cfg.threshold:
        reasons.append(f"skill success {rate:.3f} over {len(flags)} seeded episodes is below the "
                       f"threshold {cfg.threshold:.3f}")
    inc = incumbent(library, cand, to_tier)

    def composed(version: str) -> dict[str, float]:
        res = evaluator.composed(library, {cand.name: version}, seeds)
        return {t: sum(_flags(v, len(seeds), f"composed task {t!r}")) / len(seeds)
                for t, v in sorted(res.items())}

    cand_tasks = composed(cand.version)
    comp: dict[str, Any] = {"tasks": {t: {"candidate": r} for t, r in cand_tasks.items()},
                            "incumbent_version": inc.version if inc else None}
    cmean = sum(cand_tasks.values()) / len(cand_tasks) if cand_tasks else None
    comp["candidate_mean"] = cmean
    if inc is not None:
        inc_tasks = composed(inc.version)
        if set(inc_tasks) != set(cand_tasks):
            raise PromotionError(f"composed evaluation ran different tasks for {cand} "
                                 f"({sorted(cand_tasks)}) and {inc} ({sorted(inc_tasks)})")
        for t, r in inc_tasks.items():
            comp["tasks"][t]["incumbent"] = r
        imean = sum(inc_tasks.values()) / len(inc_tasks) if inc_tasks else None
        comp["incumbent_mean"] = imean
        if cmean is not None and imean is not None and cmean < imean - cfg.max_drop - 1e-12:
            worse = [t for t in cand_tasks if cand_tasks[t] < inc_tasks[t]]
            reasons.append(f"composed success {cmean:.3f} is below the incumbent {inc}'s "
                           f"{imean:.3f} (allowed drop {cfg.max_drop:.3f}); lower on {worse}")
    return GateResult(str(cand), to_tier, not reasons, reasons, asdict(cfg) | {"seeds": seeds},
                      rate, len(flags), comp)


def promote(library: SkillLibrary, name: str, version: str, to_tier: str, evaluator: Evaluator,
            cfg: GateConfig | None = None) -> dict[str, Any]:
    """Promote ``name@version`` one trust tier up, behind the admission gate.

    Args:
        library: the library (its ``min_tier`` / pins are not used here).
        name, version: the candidate.
        to_tier: the next tier after the candidate's current one.
        evaluator: the seeded sim evaluation (:class:`Evaluator`).
        cfg: gate settings.

    Returns:
        The updated contract.

    Raises:
        KeyError: unknown skill. PromotionError: unknown / retired version, a tier that is not
            the next one, files that do not verify, a failed gate (its figures in the message and
            in ``.record``), or the contract changed while the gate ran. Nothing on disk is
            changed by a refused promotion.
    """
    cfg = cfg or GateConfig()
    if to_tier not in TRUST_TIERS:
        raise PromotionError(f"unknown trust tier {to_tier!r}; expected one of {TRUST_TIERS}")
    hit = [v for v in library.versions(name) if v.version == version]
    if not hit:
        raise PromotionError(f"skill {name!r} has no version {version!r}; versions: "
                             f"{[v.version for v in library.versions(name)]}")
    cand = hit[0]
    if cand.retired:
        raise PromotionError(f"{cand} is retired; a retired version cannot be promoted")
    if tier_rank(to_tier) != tier_rank(cand.tier) + 1:
        raise PromotionError(f"{cand} has trust tier {cand.tier!r}; promotion goes one step at a "
                             f"time ({' -> '.join(TRUST_TIERS)}), not to {to_tier!r}")
    try:
        library.verify_entry(cand.entry)
    except (ValueError, KeyError, OSError) as e:
        raise PromotionError(f"{cand} does not verify: {e}") from e
    result = run_gate(library, cand, to_tier, evaluator, cfg)
    rec = result.to_dict()
    if not result.passed:
        raise PromotionError(f"promotion of {cand} to {to_tier!r} refused by the admission gate: "
                             + "; ".join(result.reasons), rec)
    now = read_manifest(cand.path)
    if now["contract_sha256"] != cand.manifest["contract_sha256"]:
        raise PromotionError(f"{cand.path}: the contract changed while the gate ran; "
                             "promotion abandoned (nothing written)", rec)
    evaluation = dict(now.get("evaluation") or {})
    evaluation["gate"] = rec
    m = update_manifest(cand.path, evaluation=evaluation, trust_tier=to_tier,
                        history={"event": "promote", "from": cand.tier, "to": to_tier,
                                 "at": rec["at"], "skill_success": result.skill_success,
                                 "incumbent": result.composed.get("incumbent_version")})
    library.invalidate(cand.path)
    return m


def retire(library: SkillLibrary, name: str, version: str, reason: str) -> dict[str, Any]:
    """Mark ``name@version`` retired: it is never resolved again (a pin to it is an error), but
    its files stay for audit.

    Raises:
        KeyError: unknown skill. RetirementError: unknown version, already retired, or an empty
            reason. Nothing on disk is changed by a refused retirement.
    """
    if not reason or not reason.strip():
        raise RetirementError("a retirement needs a reason")
    hit = [v for v in library.versions(name) if v.version == version]
    if not hit:
        raise RetirementError(f"skill {name!r} has no version {version!r}; versions: "
                              f"{[v.version for v in library.versions(name)]}")
    v = hit[0]
    if v.retired:
        raise RetirementError(f"{v} is already retired: {v.manifest['retired']}")
    at = _now()
    m = update_manifest(v.path, retired={"at": at, "reason": reason.strip()},
                        history={"event": "retire", "at": at, "reason": reason.strip()})
    library.invalidate(v.path)
    return m


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: d}


def diff_contracts(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Leaf-level differences of two contracts (dotted keys; ``contract_sha256`` ignored).

    Returns:
        ``[(key, value_in_a, value_in_b)]`` sorted by key; a missing key shows as None.
    """
    fa = _flatten({k: v for k, v in a.items() if k != "contract_sha256"})
    fb = _flatten({k: v for k, v in b.items() if k != "contract_sha256"})
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
