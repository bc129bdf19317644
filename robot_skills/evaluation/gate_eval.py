"""The admission gate's evaluation in simulation (an :class:`~robot_skills.skills.governance.
Evaluator`).

* ``skill``: held-in call episodes of the candidate's verb (calls and scenes read from the
  training demonstrations, as :mod:`robot_skills.evaluation.skill_eval`), one episode per seed,
  the calls cycled over the seeds, with the library's skills and the candidate version pinned.
* ``composed``: the suite tasks that use the skill (given as task files), one episode per seed
  per task, through :class:`~robot_skills.evaluation.runner.BenchmarkRunner` (planner + skills)
  with the given versions pinned — run once with the candidate and once with the incumbent, on
  the same seeds, by :func:`robot_skills.skills.governance.run_gate`.

Nothing here knows the simulator: the world factory (``make_world(task_path, seed,
perturbation)``) and the planner factory are passed in, as for the benchmark runner.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot_skills.evaluation.runner import BenchmarkRunner
from robot_skills.evaluation.skill_eval import evaluate_held_in, held_in_jobs
from robot_skills.skills.library import LibrarySkills, SkillLibrary, SkillVersion


@dataclass
class SimGateEvaluator:
    """Seeded sim evaluation for :func:`robot_skills.skills.governance.promote`.

    Args:
        make_world: ``make_world(task_path, seed, perturbation) -> TaskWorld``.
        demos: HDF5 demonstrations whose segments give the held-in calls and their scenes.
        tasks: the suite task files that use the skill (composed A/B).
        planner: ``planner(specs) -> Planner`` (None: the symbolic planner).
        max_steps: control-step budget per sub-goal (skill) / episode (composed).
        workers: worker processes.
        calls_per_skill: distinct held-in calls of the verb to cycle over.
        ensemble_m: temporal-ensembling coefficient of the loaded skills.
    """

    make_world: Callable[..., Any]
    demos: Sequence[str | os.PathLike]
    tasks: Sequence[str | os.PathLike]
    planner: Any = None
    max_steps: int = 600
    workers: int = 1
    calls_per_skill: int = 4
    ensemble_m: float | None = 0.01

    def _skills(self, library: SkillLibrary, pins: Mapping[str, str]) -> LibrarySkills:
        return LibrarySkills(str(library.root), self.ensemble_m, "sim",
                             tuple(sorted(pins.items())))

    def skill(self, library: SkillLibrary, version: SkillVersion,
              seeds: Sequence[int]) -> list[bool]:
        """One held-in episode of ``version``'s verb per seed (``seeds`` order).

        Raises:
            ValueError: the demonstrations hold no call of this verb.
            RuntimeError: an episode crashed (world or skill loading error), naming it.
        """
        jobs = [j for j in held_in_jobs(self.demos, calls_per_skill=self.calls_per_skill)
                if j.call.split("(")[0] == version.name]
        if not jobs:
            raise ValueError(f"the demonstrations {list(map(str, self.demos))} hold no call of "
                             f"{version.name!r}; the gate cannot evaluate it")
        calls = sorted({j.call: j for j in jobs}.values(), key=lambda j: j.call)
        run = [dataclasses.replace(calls[i % len(calls)], seed=int(s))
               for i, s in enumerate(seeds)]
        res = evaluate_held_in(run, make_world=self.make_world,
                               make_skills=self._skills(library, {version.name: version.version}),
                               planner=self.planner, max_steps=self.max_steps,
                               workers=self.workers, progress=False)
        errors = [e for e in res["episodes"] if str(e.get("reason", "")).startswith("error:")]
        if errors:  # a broken evaluation is not a failing skill: say so
            raise RuntimeError(f"{len(errors)} held-in episode(s) of {version} crashed, e.g. "
                               f"{errors[0]['call']} seed {errors[0]['seed']}: "
                               f"{errors[0]['reason']}")
        by_seed = {(e["call"], int(e["seed"])): bool(e["success"]) for e in res["episodes"]}
        return [by_seed[(j.call, j.seed)] for j in run]

    def composed(self, library: SkillLibrary, pins: Mapping[str, str],
                 seeds: Sequence[int]) -> dict[str, list[bool]]:
        """One episode per seed of every task in :attr:`tasks`, ``pins`` forcing versions.

        Raises:
            ValueError: seeds that are not consecutive (the runner seeds ``base + i``), or no
                tasks.
            RuntimeError: an episode crashed (world or skill loading error), naming it.
        """
        seeds = [int(s) for s in seeds]
        if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
            raise ValueError(f"composed evaluation needs consecutive seeds, got {seeds}")
        if not self.tasks:
            raise ValueError("no suite tasks given for the composed A/B evaluation")
        runner = BenchmarkRunner(make_world=self.make_world,
                                 make_skills=self._skills(library, pins), planner=self.planner,
                                 max_steps=self.max_steps, workers=self.workers, video=False,
                                 progress=False)
        res = runner.run_suite([Path(t) for t in self.tasks], len(seeds), base_seed=seeds[0],
                               write_report=False)
        # an episode that crashed or whose world was not built is a broken evaluation, not a
        # failing skill; an 'invalid' one (the scene itself was unusable) counts as a failure,
        # which only makes the gate stricter
        errors = [e for e in res["episodes"] if e.get("status") in ("error", "not_built")]
        if errors:
            raise RuntimeError(f"{len(errors)} composed episode(s) with {dict(pins)} crashed, e.g. "
                               f"{errors[0]['task']} seed {errors[0]['seed']}: "
                               f"{errors[0]['error']}")
        out: dict[str, list[bool]] = {}
        for e in res["episodes"]:
            out.setdefault(e["task"], []).append(bool(e["success"]))
        return out
