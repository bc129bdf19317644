"""New behaviours built from a library's skills, learned from k demonstrations: the composition
table of parameter-space merges, CAT, PSEC and action-space blending against from-scratch BC and
a LoRA fine-tune (issue 11).

A :class:`Behaviour` is one call the library has no skill for: a chain of existing verbs run as
one policy (``pick_place``: pick, then place on), or an existing verb under conditions no
training scene had (``place_on_shifted``: the target moved out of every training region). Its
demonstrations come from the scripted experts run as one macro policy (:class:`MacroExpert`)
after an unrecorded expert prefix that sets its start state; its success test is its goal atoms,
observed, with the gripper released.

Every method learns from the same ``k`` demonstrations (the first ``k`` successful collection
seeds) and is evaluated on the same evaluation seeds:

==============  ===========================================================================
``bc_scratch``  a fresh :class:`GoalConditionedBC` of the base's size, trained on the k demos
``lora_ft``     a new LoRA adapter (PEFT, the library's rank) on the frozen base
``linear`` /    PEFT's weighted-adapter merges of the source skills (uniform weights ``1/K``,
``ties`` /      density 0.5 for TIES / DARE); no training, so the same model at every k
``dare_ties`` /
``cat_merge``
``cat``         LoRA Soups' CAT: per-layer skill weights trained on the k demos
``psec``        PSEC: a state network's per-skill weights trained on the k demos
``blend``       SkillBlender: goals and per-dimension weights over the frozen primitives
==============  ===========================================================================

The base network is conditioned on a skill embedding, and a new behaviour has none: the merges,
the LoRA fine-tune and CAT / PSEC use the mix of the sources' embeddings (uniform for the merges
and the fine-tune, CAT's own learned weights, PSEC's state-dependent weights); SkillBlender runs
each primitive under its own.

Nothing here imports the simulator: world and expert factories are passed in.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robot_skills.data.dataset import SkillChunkDataset, action_chunks
from robot_skills.domain.predicates import Atom
from robot_skills.domain.verbs import Parameter, SkillSpec
from robot_skills.evaluation.stats import wilson_interval
from robot_skills.execution.executor import Executor, termination_holds
from robot_skills.execution.interfaces import SkillSet
from robot_skills.execution.pool import iter_parallel
from robot_skills.execution.recording import EpisodeRecording
from robot_skills.planning.symbolic import Plan, SkillCall
from robot_skills.policies.features import skill_features

__all__ = ["Behaviour", "BEHAVIOURS", "METHODS", "STATIC_METHODS", "MacroExpert",
           "TableConfig", "argument_binding", "source_bindings",
           "behaviour_spec", "collect_behaviour", "behaviour_dataset", "build_method",
           "evaluate_model", "run_composition_table", "format_table"]

STATIC_METHODS = ("linear", "ties", "dare_ties", "cat_merge")
TRAINED_METHODS = ("bc_scratch", "lora_ft", "cat", "psec", "blend")
METHODS = ("bc_scratch", "lora_ft", *STATIC_METHODS, "cat", "psec", "blend")


@dataclass(frozen=True)
class Behaviour:
    """A new behaviour: one call, its start state, its expert, its sources.

    Attributes:
        name: the behaviour's verb (not a library skill).
        description: one sentence.
        task: the LIBERO task file (stem) whose scene it runs in.
        params: typed parameters ``(name, type)``, at most two (the feature slots).
        args: the entities bound to ``params`` in that scene.
        preconditions / goal: predicate strings over ``?params`` (the goal is the success test,
            together with a released gripper).
        prefix: goal atoms (e.g. ``("holding", "akita_black_bowl_1")``) the experts reach,
            unrecorded, before the behaviour starts; empty = the task's initial state.
        steps: the expert calls (``verb(arg, ...)``) that make up the behaviour, in order.
        sources: the library skills it is composed from.
        object_shifts: entity -> ``(dx, dy)`` m, moves of init regions beyond training.
        time_limit_s: simulated seconds for the whole call.
    """

    name: str
    description: str
    task: str
    params: tuple[tuple[str, str], ...]
    args: tuple[str, ...]
    preconditions: tuple[str, ...]
    goal: tuple[str, ...]
    steps: tuple[str, ...]
    sources: tuple[str, ...]
    prefix: tuple[Atom, ...] = ()
    object_shifts: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    time_limit_s: float = 30.0


BOWL, PLATE, DRAWER = "akita_black_bowl_1", "plate_1", "wooden_cabinet_1_top_region"

BEHAVIOURS: dict[str, Behaviour] = {b.name: b for b in [
    Behaviour("place_on_shifted",
              "Put the held object down on a target standing where no training scene had it.",
              "put_the_bowl_on_the_plate", (("obj", "graspable"), ("target", "surface")),
              (BOWL, PLATE), ("holding ?obj",), ("on ?obj ?target",),
              (f"place_on({BOWL}, {PLATE})",), ("place_on", "place_in"),
              prefix=(("holding", BOWL),), object_shifts={PLATE: (0.0, -0.10)},
              time_limit_s=20.0),
    Behaviour("pick_place", "Pick an object up and put it down on a target, as one skill.",
              "put_the_bowl_on_the_plate", (("obj", "graspable"), ("target", "surface")),
              (BOWL, PLATE), ("handempty",), ("on ?obj ?target",),
              (f"pick({BOWL})", f"place_on({BOWL}, {PLATE})"), ("pick", "place_on"),
              time_limit_s=30.0),
    Behaviour("pick_place_in", "Pick an object up and put it into an open drawer, as one skill.",
              "open_the_top_drawer_and_put_the_bowl_inside",
              (("obj", "graspable"), ("target", "container")), (BOWL, DRAWER),
              ("handempty",), ("in ?obj ?target",),
              (f"pick({BOWL})", f"place_in({BOWL}, {DRAWER})"), ("pick", "place_in"),
              prefix=(("open", DRAWER),), time_limit_s=30.0),
    Behaviour("stow", "Open a drawer, then pick an object and put it inside, as one skill.",
              "open_the_top_drawer_and_put_the_bowl_inside",
              (("obj", "graspable"), ("target", "container")), (BOWL, DRAWER),
              ("handempty", "not open ?target"), ("open ?target", "in ?obj ?target"),
              (f"open({DRAWER})", f"pick({BOWL})", f"place_in({BOWL}, {DRAWER})"),
              ("open", "pick", "place_in"), time_limit_s=45.0),
]}


def behaviour_spec(b: Behaviour) -> SkillSpec:
    """The behaviour's contract: its goal is both its add effects and its termination test."""
    return SkillSpec(b.name, b.description, tuple(Parameter(n, t) for n, t in b.params),
                     tuple(b.preconditions), tuple(b.goal), (), tuple(b.goal), b.time_limit_s,
                     True)


def _goal_atoms(b: Behaviour) -> frozenset[Atom]:
    binding = {n: a for (n, _), a in zip(b.params, b.args)}
    out = set()
    for g in b.goal:
        words = g.split()
        out.add(tuple(binding[w[1:]] if w.startswith("?") else w for w in words))
    return frozenset(out)


class _FixedPlanner:
    """Plans the one behaviour call (the behaviour is not searched for: it is the task)."""

    def __init__(self, call: SkillCall) -> None:
        self.call = call

    def plan(self, problem: Any) -> Plan:
        return Plan([self.call], [], frozenset(problem.goal))


class MacroExpert:
    """Scripted experts run one after another as one policy: when a step's termination test holds
    in the world's predicate state, the next step's expert starts.

    Args:
        experts: the expert skill set (policies + contracts).
        steps: the calls, in order.
    """

    def __init__(self, experts: SkillSet, steps: Sequence[str]) -> None:
        self.experts = experts
        self.steps = [SkillCall.parse(s) for s in steps]
        self._i = 0
        self._world: Any = None

    def _start(self, i: int) -> None:
        self._i = i
        c = self.steps[i]
        self.experts.policies[c.skill].reset(c.args, self._world)

    def reset(self, args: Sequence[str], world: Any = None) -> None:
        """Start at the first step (``args`` are the behaviour's; each step has its own)."""
        if world is None:
            raise ValueError("MacroExpert needs the world to test each step's termination")
        self._world = world
        self._start(0)

    def act(self, obs: Any) -> Any:
        """The current step's expert action, after moving on past every finished step."""
        entities = self._world.symbolic_problem().entities
        while self._i < len(self.steps) - 1:
            c = self.steps[self._i]
            if not termination_holds(self.experts.specs[c.skill], c.args,
                                     self._world.predicate_state(), entities):
                break
            self._start(self._i + 1)
        return self.experts.policies[self.steps[self._i].skill].act(obs)


@dataclass(frozen=True)
class _Factories:
    make_world: Callable[..., Any]
    make_experts: Callable[..., Any]
    task_dir: str


def _world(b: Behaviour, f: _Factories, seed: int) -> Any:
    from robot_skills.evaluation.perturbations import PerturbationSpec

    pert = (PerturbationSpec(name=f"{b.name}_shift", object_shifts=dict(b.object_shifts))
            if b.object_shifts else None)
    world = f.make_world(Path(f.task_dir) / f"{b.task}.bddl", seed, pert)
    world.robot.connect()
    world.robot.reset(seed)
    return world


def _prefix(b: Behaviour, world: Any, experts: SkillSet) -> str:
    """Run the unrecorded expert prefix; '' on success, else the reason."""
    if not b.prefix:
        return ""
    res = Executor(world, experts, max_steps=600, max_replans=1).run(frozenset(b.prefix))
    return "" if res.success else f"prefix failed: {res.reason}"


def _collect_one(seed: int, b: Behaviour, f: _Factories) -> dict[str, Any]:
    world = None
    try:
        world = _world(b, f, seed)
        experts = f.make_experts(None)
        why = _prefix(b, world, experts)
        if why:
            return {"seed": seed, "success": False, "reason": why}
        rec = EpisodeRecording()
        spec = behaviour_spec(b)
        call = SkillCall(b.name, b.args)
        t0 = time.perf_counter()
        res = Executor(world, SkillSet({b.name: MacroExpert(experts, b.steps)}, {b.name: spec}),
                       _FixedPlanner(call), max_replans=0, recorder=rec).run(_goal_atoms(b))
        if not res.success:
            return {"seed": seed, "success": False, "reason": res.reason}
        seg = [s for s in rec.segments if s.skill == b.name and s.success]
        if len(seg) != 1:
            return {"seed": seed, "success": False, "reason": "no whole behaviour segment"}
        s = seg[0]
        feats = np.stack([skill_features(o, b.args) for o in rec.observations[s.start:s.end]])
        acts = np.stack([a.to_array() for a in rec.actions[s.start:s.end]]).astype(np.float32)
        return {"seed": seed, "success": True, "features": feats, "actions": acts,
                "wall_s": time.perf_counter() - t0}
    except Exception as e:  # noqa: BLE001 - reported per seed
        return {"seed": seed, "success": False, "reason": f"error: {type(e).__name__}: {e}"}
    finally:
        if world is not None:
            world.robot.disconnect()


def collect_behaviour(b: Behaviour, *, make_world: Callable[..., Any],
                      make_experts: Callable[..., Any], task_dir: str | Path, demos: int,
                      seed: int = 1000, max_tries: int | None = None, workers: int = 1
                      ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Expert demonstrations of ``b``: the first ``demos`` successful seeds from ``seed`` on.

    Args:
        b: the behaviour.
        make_world: ``make_world(task_path, seed, perturbation) -> TaskWorld``.
        make_experts: ``make_experts(task_path) -> SkillSet`` of the scripted experts.
        task_dir: the suite directory holding ``b.task + ".bddl"``.
        demos: successful demonstrations wanted.
        seed: first collection seed.
        max_tries: seeds tried at most (default ``3 * demos``).
        workers: processes.

    Returns:
        ``(demos, summary)``: per demo ``{seed, features (T, FEATURE_DIM) float32, actions
        (T, 7) float32}`` sorted by seed; the summary counts tries, expert successes, failure
        reasons, and the kept demos' steps (every seed of the range is tried).

    Raises:
        RuntimeError: fewer than ``demos`` successful demonstrations within ``max_tries``.
    """
    f = _Factories(make_world, make_experts, str(task_dir))
    tries = int(max_tries or 3 * demos)
    fn = functools.partial(_collect_one, b=b, f=f)
    got: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}
    t0 = time.perf_counter()
    for r in iter_parallel(fn, list(range(seed, seed + tries)), workers,
                           desc=f"collect {b.name}", progress=False):
        if r["success"]:
            got.append(r)
        else:
            key = r["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
    got.sort(key=lambda r: r["seed"])
    succeeded = len(got)
    if len(got) < demos:
        raise RuntimeError(f"behaviour {b.name}: {len(got)}/{tries} expert episodes succeeded, "
                           f"{demos} wanted; failures {reasons}")
    got = got[:demos]
    summary = {"tries": tries, "expert_successes": succeeded, "demos": len(got),
               "failures": reasons,
               "steps": int(sum(len(d["actions"]) for d in got)),
               "wall_s": round(time.perf_counter() - t0, 1)}
    return got, summary


def behaviour_dataset(demos: Sequence[Mapping[str, Any]], chunk_size: int, skills: Sequence[str],
                      skill_id: int = 0) -> SkillChunkDataset:
    """Chunk samples of behaviour demonstrations (every sample labelled ``skill_id``).

    Args:
        demos: from :func:`collect_behaviour`.
        chunk_size: ``H``.
        skills: the vocabulary recorded in the dataset (the base's).
        skill_id: the id every sample carries.

    Raises:
        ValueError: no demonstration.
    """
    if not demos:
        raise ValueError("behaviour_dataset needs at least one demonstration")
    f, a, m, e = [], [], [], []
    for i, d in enumerate(demos):
        chunks, mask = action_chunks(d["actions"], 0, len(d["actions"]), chunk_size)
        f.append(np.asarray(d["features"], np.float32))
        a.append(chunks)
        m.append(mask)
        e.append(np.full(len(chunks), i, np.int64))
    n = sum(len(x) for x in f)
    return SkillChunkDataset(np.concatenate(f), np.full(n, skill_id, np.int64), np.concatenate(a),
                             np.concatenate(m), np.concatenate(e), list(skills), chunk_size)


@dataclass(frozen=True)
class TableConfig:
    """Training budgets of the composition table (optimiser steps at batch 256, AdamW), and
    whether the composed methods read each source through its argument binding
    (:func:`source_bindings`; False: every source reads the behaviour's features as they are)."""

    bc_steps: int = 3000
    bc_lr: float = 1e-3
    lora_steps: int = 600
    lora_lr: float = 3e-3
    compose_steps: int = 600
    compose_lr: float = 3e-3
    merge_density: float = 0.5
    bind_arguments: bool = True
    batch_size: int = 256
    seed: int = 0


def _fit(model: nn.Module, ds: SkillChunkDataset, stats: Any, steps: int, lr: float,
         cfg: TableConfig) -> None:
    from robot_skills.training.trainer import FitConfig, fit

    with tempfile.TemporaryDirectory(prefix="rs_compose_") as tmp:
        fit(model, ds.tensors(stats), FitConfig(
            steps=steps, batch_size=cfg.batch_size, lr=lr, warmup_steps=min(50, steps // 10),
            seed=cfg.seed, ckpt_every=max(steps, 1), progress=False, resume=False,
            weight_decay=0.0), work_dir=tmp, desc="compose")


def _base_with_row(library: Any, ids: Sequence[int], weights: Sequence[float]) -> tuple[Any, int]:
    """The base network whose row ``ids[0]`` of the skill table is ``sum_i w_i emb(ids_i)``."""
    from robot_skills.policies.bc import GoalConditionedBC, mix_skill_embedding

    info, state = library.base()
    model = GoalConditionedBC(info.arch)
    model.load_state_dict(state)
    with torch.no_grad():
        mix = mix_skill_embedding(model, torch.tensor(list(ids)),
                                  torch.tensor(list(weights), dtype=torch.float32))
        model.skill_emb.weight[ids[0]] = mix
    return model, int(ids[0])


def argument_binding(stats: Any, behaviour_args: Sequence[str], source_args: Sequence[str]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The affine map from a behaviour's normalised features to a source skill's, for the
    source called on a subset of the behaviour's arguments.

    The source's slot ``k`` reads the behaviour's slot holding ``source_args[k]``; its other slots
    read "absent" (raw zeros); the proprioception is shared. In raw units that is a selection,
    in normalised units ``x_src = M x_beh + c`` with the statistics' means and stds.

    Args:
        stats: the library's :class:`~robot_skills.policies.normalization.NormStats`.
        behaviour_args / source_args: entity names; every source argument must be a behaviour
            argument.

    Returns:
        ``M (F, F)`` and ``c (F,)`` float32.

    Raises:
        ValueError: a source argument the behaviour does not have.
    """
    from robot_skills.policies.features import FEATURE_DIM, PROPRIO_DIM, SLOT_DIM

    mean = np.asarray(stats.feature_mean, np.float64)
    std = np.asarray(stats.feature_std, np.float64)
    m = np.zeros((FEATURE_DIM, FEATURE_DIM))
    c = -mean / std  # raw zeros: an absent slot
    m[:PROPRIO_DIM, :PROPRIO_DIM] = np.eye(PROPRIO_DIM)
    c[:PROPRIO_DIM] = 0.0
    for k, a in enumerate(source_args):
        if a not in behaviour_args:
            raise ValueError(f"source argument {a!r} is not among the behaviour's "
                             f"{list(behaviour_args)}")
        j = list(behaviour_args).index(a)
        for d in range(SLOT_DIM):
            dst, src = PROPRIO_DIM + SLOT_DIM * k + d, PROPRIO_DIM + SLOT_DIM * j + d
            m[dst, src] = std[src] / std[dst]
            c[dst] = (mean[src] - mean[dst]) / std[dst]
    return m.astype(np.float32), c.astype(np.float32)


def source_bindings(b: Behaviour, stats: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per source skill of ``b``, its :func:`argument_binding`: the arguments of the first step
    calling it, or, for a source no step calls (a look-alike offered to the composition), the
    behaviour's arguments in order, as many as the verb takes.

    Raises:
        ValueError: a source that is neither called by a step nor a known verb.
    """
    from robot_skills.domain.verbs import SKILL_SPECS

    out = []
    steps = [SkillCall.parse(s) for s in b.steps]
    for src in b.sources:
        verb = src.split("@")[0]
        call = next((c for c in steps if c.skill == verb), None)
        if call is not None:
            args = call.args
        elif verb in SKILL_SPECS:
            args = tuple(b.args[:len(SKILL_SPECS[verb].parameters)])
        else:
            raise ValueError(f"behaviour {b.name}: no step calls its source {src!r} and it is "
                             "not a known verb")
        m, c = argument_binding(stats, b.args, args)
        out.append((torch.from_numpy(m), torch.from_numpy(c)))
    return out


class _InputMix(nn.Module):
    """A static merge reading the sources' argument bindings mixed with fixed weights."""

    def __init__(self, model: nn.Module, maps: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 weights: Sequence[float]) -> None:
        super().__init__()
        from robot_skills.policies.psec import stack_input_maps

        self.model = model
        self.cfg = model.cfg
        m, c = stack_input_maps(maps, len(weights), model.cfg.feature_dim)
        w = torch.tensor(list(weights), dtype=torch.float32)
        self.register_buffer("m", torch.einsum("k,kfg->fg", w, m))
        self.register_buffer("c", w @ c)

    def forward(self, features: torch.Tensor, skill_id: torch.Tensor) -> torch.Tensor:
        """``(B, F), (B,) -> (B, H, 7)``."""
        return self.model(features @ self.m.t() + self.c, skill_id)


def _source_ids(library: Any, refs: Sequence[str]) -> list[int]:
    info, _ = library.base()
    return [info.skills.index(r.split("@")[0]) for r in refs]


def build_method(method: str, library: Any, b: Behaviour, demos: Sequence[Mapping[str, Any]],
                 cfg: TableConfig = TableConfig()) -> tuple[nn.Module, int]:
    """Build (and train, for trained methods) one method's policy for behaviour ``b``.

    Args:
        method: one of :data:`METHODS`.
        library: the :class:`~robot_skills.skills.library.SkillLibrary` holding ``b.sources``.
        b: the behaviour.
        demos: its demonstrations (ignored by the static merges).
        cfg: training budgets.

    Returns:
        ``(model, skill_id)``: a module ``(B, FEATURE_DIM), (B,) -> (B, H, 7)`` in normalised
        units (the library's statistics), and the id to call it with.

    Raises:
        ValueError: unknown method; load errors of the sources as
            :func:`robot_skills.skills.skill_dir.load_skill`.
    """
    from peft import LoraConfig

    from robot_skills.policies.bc import GoalConditionedBC
    from robot_skills.policies.peft_adapter import apply_adapter, attach, config_dict
    from robot_skills.skills import merge

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    torch.manual_seed(cfg.seed)
    refs = list(b.sources)
    k = len(refs)
    ids = _source_ids(library, refs)
    info, _ = library.base()
    stats = library.load(refs[0]).stats
    maps = source_bindings(b, stats) if cfg.bind_arguments else None
    if method in STATIC_METHODS:
        pm = {"cat_merge": "cat"}.get(method, method)
        density = cfg.merge_density if pm in ("ties", "dare_ties") else None
        state, ad = merge.merge_adapters(library, refs, [1.0 / k] * k, pm, density=density)
        base, sid = _base_with_row(library, ids, [1.0 / k] * k)
        pcfg = config_dict(ad["rank"], ad["alpha"], ad["target_layers"], None)
        merged = apply_adapter(base, pcfg, state, merge=True).eval()
        return (_InputMix(merged, maps, [1.0 / k] * k).eval() if maps else merged), sid
    ds = behaviour_dataset(demos, info.arch.chunk_size, info.skills, ids[0])
    if method == "bc_scratch":
        arch = copy.deepcopy(info.arch)
        arch.num_skills = 1
        model = GoalConditionedBC(arch)
        ds0 = behaviour_dataset(demos, info.arch.chunk_size, info.skills, 0)
        _fit(model, ds0, stats, cfg.bc_steps, cfg.bc_lr, cfg)
        return model.eval(), 0
    if method == "lora_ft":
        base, sid = _base_with_row(library, ids, [1.0 / k] * k)
        ad = library.load(refs[0]).adapter_config
        known = set(LoraConfig.__dataclass_fields__)
        lcfg = LoraConfig(**{kk: v for kk, v in ad.items() if kk in known
                             and kk not in ("peft_version", "base_model_name_or_path",
                                            "inference_mode")})
        pmodel = attach(base, lcfg)
        _fit(base, ds, stats, cfg.lora_steps, cfg.lora_lr, cfg)
        return pmodel.merge_and_unload().eval(), sid
    if method == "cat":
        model = merge.cat_from_library(library, refs, mix_embeddings=True, input_maps=maps)
    elif method == "psec":
        model = merge.psec_from_library(library, refs, mix_embeddings=True, input_maps=maps)
    else:
        model = merge.blender_from_library(library, refs, input_maps=maps)
    _fit(model, ds, stats, cfg.compose_steps, cfg.compose_lr, cfg)
    return model.eval(), ids[0]


def _gripper_levels(demos: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.unique(np.concatenate([np.asarray(d["actions"])[:, 6] for d in demos]))


def evaluate_model(model: nn.Module, skill_id: int, stats: Any, b: Behaviour,
                   gripper_levels: np.ndarray, seeds: Sequence[int], *,
                   make_world: Callable[..., Any], make_experts: Callable[..., Any],
                   task_dir: str | Path) -> list[dict[str, Any]]:
    """Run the learned behaviour from the start state of each seed (expert prefix first).

    Returns:
        Per seed ``{seed, success, reason, steps, goal_atoms_held, holding}`` (the goal atoms and
        ``holding`` atoms observed at the end); an episode whose expert prefix fails is
        ``success: None`` (not counted).
    """
    from robot_skills.policies.learned_skill import LearnedSkill

    f = _Factories(make_world, make_experts, str(task_dir))
    spec = behaviour_spec(b)
    out = []
    for seed in seeds:
        world = None
        try:
            world = _world(b, f, seed)
            why = _prefix(b, world, f.make_experts(None))
            if why:
                out.append({"seed": seed, "success": None, "reason": why, "steps": 0})
                continue
            skill = LearnedSkill(b.name, model, stats, skill_id, spec=spec)
            skill.gripper_levels = np.asarray(gripper_levels, np.float64)
            res = Executor(world, SkillSet({b.name: skill}, {b.name: spec}),
                           _FixedPlanner(SkillCall(b.name, b.args)), max_replans=0
                           ).run(_goal_atoms(b))
            from robot_skills.domain.predicates import format_atom, with_derived

            held = with_derived(world.predicate_state(), world.symbolic_problem().entities)
            out.append({"seed": seed, "success": bool(res.success), "reason": res.reason,
                        "steps": int(res.steps),
                        "goal_atoms_held": [format_atom(g) for g in sorted(_goal_atoms(b))
                                            if g in held],
                        "holding": sorted(a[1] for a in held if a[0] == "holding")})
        except Exception as e:  # noqa: BLE001 - reported per episode
            out.append({"seed": seed, "success": False, "steps": 0,
                        "reason": f"error: {type(e).__name__}: {e}"})
        finally:
            if world is not None:
                world.robot.disconnect()
    return out


@dataclass(frozen=True)
class _Cell:
    behaviour: str
    method: str
    k: int


def _run_cell(cell: _Cell, library_root: str, demos: Mapping[str, Sequence[Mapping[str, Any]]],
              seeds: Sequence[int], f: _Factories, cfg: TableConfig) -> tuple[_Cell, dict]:
    from robot_skills.skills.library import SkillLibrary
    from robot_skills.training.device import configure_threads

    configure_threads(1)
    b = BEHAVIOURS[cell.behaviour]
    lib = SkillLibrary(library_root)
    d = list(demos[cell.behaviour])[:cell.k]
    t0 = time.perf_counter()
    model, sid = build_method(cell.method, lib, b, d, cfg)
    train_s = time.perf_counter() - t0
    stats = lib.load(b.sources[0]).stats
    eps = evaluate_model(model, sid, stats, b, _gripper_levels(demos[cell.behaviour]), seeds,
                         make_world=f.make_world, make_experts=f.make_experts,
                         task_dir=f.task_dir)
    counted = [e for e in eps if e["success"] is not None]
    s = sum(bool(e["success"]) for e in counted)
    lo, hi = wilson_interval(s, len(counted)) if counted else (math.nan, math.nan)
    return cell, {"behaviour": cell.behaviour, "method": cell.method, "k": cell.k,
                  "successes": s, "episodes": len(counted), "rate": s / max(len(counted), 1),
                  "ci95": [lo, hi], "train_s": round(train_s, 1), "episodes_detail": eps}


def run_composition_table(library_root: str | Path, *, make_world: Callable[..., Any],
                          make_experts: Callable[..., Any], task_dir: str | Path,
                          behaviours: Sequence[str] = tuple(BEHAVIOURS),
                          methods: Sequence[str] = METHODS, ks: Sequence[int] = (5, 10, 25),
                          episodes: int = 20, eval_seed: int = 5000, collect_seed: int = 1000,
                          workers: int = 1, cfg: TableConfig = TableConfig(),
                          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Collect, train and evaluate every (behaviour, method, k) cell on the same seeds.

    Static merges use no demonstrations: they are evaluated once per behaviour and reported at
    every k.

    Args:
        library_root: a LoRA skill library holding every behaviour's sources.
        make_world / make_experts / task_dir: as :func:`collect_behaviour`.
        behaviours: names in :data:`BEHAVIOURS`.
        methods: names in :data:`METHODS`.
        ks: demonstration counts.
        episodes: evaluation seeds per cell (``eval_seed ...``).
        workers: processes (cells run in parallel).
        cfg: training budgets.

    Returns:
        ``{"config", "data", "cells": [...]}`` (JSON-able).

    Raises:
        ValueError: unknown behaviour or method, or a k < 1.
        RuntimeError: the experts could not produce ``max(ks)`` demonstrations.
    """
    unknown = [x for x in behaviours if x not in BEHAVIOURS] + \
        [x for x in methods if x not in METHODS]
    if unknown:
        raise ValueError(f"unknown behaviours/methods {unknown}; known {list(BEHAVIOURS)} / "
                         f"{list(METHODS)}")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be >= 1, got {list(ks)}")
    f = _Factories(make_world, make_experts, str(task_dir))
    demos: dict[str, list[dict[str, Any]]] = {}
    data: dict[str, Any] = {}
    for name in behaviours:
        got, summ = collect_behaviour(BEHAVIOURS[name], make_world=make_world,
                                      make_experts=make_experts, task_dir=task_dir,
                                      demos=max(ks), seed=collect_seed, workers=workers)
        demos[name] = got
        data[name] = summ
        log(f"collected {name}: {summ}")
    cells = []
    for name in behaviours:
        for m in methods:
            for k in ([max(ks)] if m in STATIC_METHODS else sorted(ks)):
                cells.append(_Cell(name, m, k))
    seeds = list(range(eval_seed, eval_seed + episodes))
    fn = functools.partial(_run_cell, library_root=str(library_root), demos=demos, seeds=seeds,
                           f=f, cfg=cfg)
    out = []
    for cell, res in iter_parallel(fn, cells, workers, desc="composition cells", progress=False):
        log(f"{cell.behaviour:18s} {cell.method:10s} k={cell.k:<3d} "
            f"{res['successes']}/{res['episodes']}  (train {res['train_s']} s)")
        out.append(res)
    out.sort(key=lambda r: (behaviours.index(r["behaviour"]), METHODS.index(r["method"]), r["k"]))
    return {"config": {"library": str(library_root), "ks": list(ks), "episodes": episodes,
                       "eval_seeds": [seeds[0], seeds[-1]], "collect_seed": collect_seed,
                       "training": cfg.__dict__, "behaviours": {
                           n: {"task": BEHAVIOURS[n].task, "steps": list(BEHAVIOURS[n].steps),
                               "sources": list(BEHAVIOURS[n].sources),
                               "prefix": [" ".join(a) for a in BEHAVIOURS[n].prefix],
                               "object_shifts": {k: list(v) for k, v in
                                                 BEHAVIOURS[n].object_shifts.items()}}
                           for n in behaviours}},
            "data": data, "cells": json.loads(json.dumps(out))}


def format_table(results: Mapping[str, Any]) -> str:
    """A markdown table: one row per (behaviour, method), one column per k (``s/n = %``)."""
    ks = results["config"]["ks"]
    lines = ["| behaviour | method | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "|---|---|" + "---|" * len(ks)]
    by: dict[tuple[str, str], dict[int, Mapping[str, Any]]] = {}
    for c in results["cells"]:
        by.setdefault((c["behaviour"], c["method"]), {})[c["k"]] = c
    for (bname, m), row in by.items():
        cols = []
        for k in ks:
            c = row.get(k) or (next(iter(row.values())) if m in STATIC_METHODS else None)
            cols.append("–" if c is None else
                        f"{c['successes']}/{c['episodes']} = {100 * c['rate']:.0f} %")
        lines.append(f"| {bname} | {m}{' (no demos)' if m in STATIC_METHODS else ''} | "
                     + " | ".join(cols) + " |")
    return "\n".join(lines) + "\n"
