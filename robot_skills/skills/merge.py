"""Static merges of LoRA skills with PEFT's weighted-adapter merge
(:meth:`peft.LoraModel.add_weighted_adapter`).

Methods (PEFT's ``combination_type``):

* ``linear`` — ``A = sum_i sqrt(w_i) s_i A_i``, ``B = sum_i sqrt(w_i) B_i`` (same rank required;
  exact for one adapter, a cross-term approximation for several);
* ``cat`` — concatenation: ranks add up and the delta is exactly ``sum_i w_i s_i B_i A_i``;
* ``ties`` — TIES-Merging (Yadav et al., NeurIPS 2023): trim each delta to its ``density``
  largest-magnitude entries, elect a sign per entry, average the agreeing ones;
* ``dare_linear`` / ``dare_ties`` — DARE (Yu et al., ICML 2024): drop entries at random with
  probability ``1 - density`` and rescale, then linear / TIES;
* ``svd`` — the exact weighted delta sum re-factored to rank ``svd_rank`` by SVD.

For ``ties`` / ``dare_*`` / ``svd`` PEFT works on the dense deltas and returns an SVD re-factoring
at the largest source rank. DARE draws random masks: seed ``torch`` for a reproducible merge.
The result is a new PEFT adapter on the same base; :func:`save_merged_skill` writes it as a skill
version with the merge recorded in its provenance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from robot_skills.domain.verbs import SkillSpec
from robot_skills.policies.bc import GoalConditionedBC
from robot_skills.skills.library import SkillLibrary, split_entry
from robot_skills.skills.skill_dir import load_skill, save_skill

MERGE_METHODS = ("linear", "cat", "ties", "dare_linear", "dare_ties", "svd")


def _lora_skills(library: SkillLibrary, refs: Sequence[str]) -> list[Any]:
    """The verified PEFT LoRA skills ``refs`` (``name`` or ``name@version``; newest at tier
    ``sim`` or above unless pinned), loaded against the library's base.

    Raises:
        ValueError: a skill that is not a PEFT LoRA adapter. KeyError / SkillFormatError /
            SkillIntegrityError: see :meth:`SkillLibrary.resolve` and :func:`load_skill`.
    """
    info, _ = library.base()
    out = []
    for r in refs:
        name, ver = split_entry(r)
        v = library.resolve(name, "sim", ver)
        sk = load_skill(v.path, info if v.manifest["adapter"]["kind"] == "lora" else None)
        if sk.adapter_config is None:
            raise ValueError(f"{v} is not a PEFT LoRA skill (kind {sk.kind!r}); only LoRA "
                             "adapters merge or compose")
        out.append(sk)
    return out

def merge_adapters(library: SkillLibrary, refs: Sequence[str], weights: Sequence[float],
                   method: str = "cat", density: float | None = None,
                   svd_rank: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Merge the LoRA adapters of ``refs`` (``name`` = newest version, or ``name@version``).

    Args:
        library: the library (its base is shared by every source).
        refs: two or more skills.
        weights: one weight per source.
        method: one of :data:`MERGE_METHODS`.
        density: kept fraction for ``ties`` / ``dare_*`` (in (0, 1]; required for them).
        svd_rank: target rank for ``svd`` (default the largest source rank).

    Returns:
        ``(state, adapter)``: the merged adapter's tensors (PEFT keys) and its
        ``{kind: lora, rank, alpha, target_layers}`` (for :func:`save_skill`).

    Raises:
        ValueError: unknown method, fewer than two sources, weights of another length, a
            ``full`` skill, sources adapting different layers, ``linear`` over different ranks,
            a missing or out-of-range density. Load errors of the sources (tampered files,
            another base) as :func:`load_skill`.
    """
    from peft import (
        LoraConfig,
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )

    if method not in MERGE_METHODS:
        raise ValueError(f"merge method must be one of {MERGE_METHODS}, got {method!r}")
    if len(refs) < 2:
        raise ValueError(f"a merge needs two or more skills, got {list(refs)}")
    if len(weights) != len(refs):
        raise ValueError(f"{len(weights)} weights for {len(refs)} skills")
    if method in ("ties", "dare_linear", "dare_ties"):
        if density is None or not 0.0 < density <= 1.0:
            raise ValueError(f"method {method!r} needs density in (0, 1], got {density!r}")
    info, base_state = library.base()
    loaded = _lora_skills(library, refs)
    targets = [sorted(s.adapter_config["target_modules"]) for s in loaded]
    if any(t != targets[0] for t in targets):
        raise ValueError(f"the skills adapt different layers: {dict(zip(refs, targets))}")
    ranks = [int(s.adapter_config["r"]) for s in loaded]
    if method == "linear" and len(set(ranks)) != 1:
        raise ValueError(f"a linear merge needs equal ranks, got {dict(zip(refs, ranks))}; "
                         "use cat or svd")
    known = set(LoraConfig.__dataclass_fields__)

    def cfg(s: Any) -> Any:
        return LoraConfig(**{k: v for k, v in s.adapter_config.items()
                             if k in known and k not in ("peft_version", "base_model_name_or_path")})

    model = GoalConditionedBC(info.arch)
    model.load_state_dict(base_state)
    names = [f"src{i}" for i in range(len(loaded))]
    pm = get_peft_model(model, cfg(loaded[0]), adapter_name=names[0])
    set_peft_model_state_dict(pm, dict(loaded[0].adapter_state), adapter_name=names[0])
    for n, s in zip(names[1:], loaded[1:]):
        pm.add_adapter(n, cfg(s))
        set_peft_model_state_dict(pm, dict(s.adapter_state), adapter_name=n)
    kw: dict[str, Any] = {}
    if density is not None:
        kw["density"] = float(density)
    if method == "svd":
        kw["svd_rank"] = int(svd_rank or max(ranks))
    try:
        pm.base_model.add_weighted_adapter(names, [float(w) for w in weights], "merged",
                                           combination_type=method, **kw)
    except (ValueError, RuntimeError, TypeError) as e:
        raise ValueError(f"peft refused the {method} merge of {list(refs)}: {e}") from e
    state = {k: v.detach().cpu().contiguous().clone()
             for k, v in get_peft_model_state_dict(pm, adapter_name="merged").items()}
    mc = pm.peft_config["merged"]
    rank = {int(v.shape[0]) for k, v in state.items() if k.endswith("lora_A.weight")}
    if len(rank) != 1:
        raise ValueError(f"the merged adapter has inconsistent ranks {sorted(rank)}")
    return state, {"kind": "lora", "rank": rank.pop(), "alpha": float(mc.lora_alpha),
                   "target_layers": targets[0]}


def save_merged_skill(library: SkillLibrary, refs: Sequence[str], weights: Sequence[float],
                      method: str, spec: SkillSpec, version: str, skill_id: int,
                      density: float | None = None, svd_rank: int | None = None,
                      extra_provenance: Mapping[str, Any] | None = None) -> Path:
    """Merge ``refs`` (:func:`merge_adapters`) and write the result as
    ``<library>/<spec.name>@<version>/`` at tier ``sim``, using the first source's normalisation;
    the provenance records ``merge: {method, sources (name@version), weights, density}``.

    Args:
        spec: the merged skill's contract (a new behaviour has its own).
        skill_id: the base's skill-embedding row the merged skill conditions on.

    Raises:
        as :func:`merge_adapters`; FileExistsError if that version exists.
    """
    state, adapter = merge_adapters(library, refs, weights, method, density, svd_rank)
    srcs = []
    for r in refs:
        name, ver = split_entry(r)
        srcs.append(str(library.resolve(name, "sim", ver)))
    name0, ver0 = split_entry(refs[0])
    first = library.resolve(name0, "sim", ver0)
    stats = load_skill(first.path, library.base()[0]).stats
    prov = {"merge": {"method": method, "sources": srcs, "weights": [float(w) for w in weights],
                      "density": density, "svd_rank": svd_rank}, **dict(extra_provenance or {})}
    dest = Path(os.fspath(library.root)) / f"{spec.name}@{version}"
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new version")
    return save_skill(dest, spec=spec, adapter_state=state, stats=stats, adapter=adapter,
                      base=library.base()[0], skill_id=skill_id, version=version,
                      provenance=prov, trust_tier="sim", overwrite=False)


def _adapter_pairs(library: SkillLibrary, refs: Sequence[str]
                   ) -> tuple[list[dict[str, Any]], list[int]]:
    """Per source: its ``{layer: (A, B, scaling)}`` and its row in the base's skill table."""
    from robot_skills.policies.psec import peft_pairs

    loaded = _lora_skills(library, refs)
    return ([peft_pairs(sk.adapter_state, float(sk.adapter_config["lora_alpha"]),
                        int(sk.adapter_config["r"])) for sk in loaded],
            [int(sk.manifest["base_policy"]["skill_id"]) for sk in loaded])


def cat_from_library(library: SkillLibrary, refs: Sequence[str], loss: str = "l1",
                     mix_embeddings: bool = False, input_maps: Sequence[Any] | None = None
                     ) -> Any:
    """A :class:`~robot_skills.policies.psec.CATPolicy` (LoRA Soups' CAT: learned per-layer
    skill weights) over the library's base and the LoRA skills ``refs``, verified on load.

    ``mix_embeddings``: condition the base on a learned mix of the sources' skill embeddings
    (for a new behaviour, which has no embedding of its own) instead of the caller's skill id.
    ``input_maps``: the sources' argument bindings (:class:`~robot_skills.policies.psec.
    CATPolicy`).

    Raises:
        ValueError / load errors: as :func:`psec_from_library`.
    """
    from robot_skills.policies.psec import CATPolicy

    pairs, ids = _adapter_pairs(library, refs)
    info, base_state = library.base()
    base = GoalConditionedBC(info.arch)
    base.load_state_dict(base_state)
    return CATPolicy(base, pairs, loss=loss, skill_ids=ids if mix_embeddings else None,
                     input_maps=input_maps)


def psec_from_library(library: SkillLibrary, refs: Sequence[str], hidden: int = 64,
                      reg: float = 1e-3, loss: str = "l1", mix_embeddings: bool = False,
                      input_maps: Sequence[Any] | None = None) -> Any:
    """A :class:`~robot_skills.policies.psec.PSECPolicy` over the library's base and the LoRA
    skills ``refs`` (``name`` or ``name@version``), every file verified on load.

    ``mix_embeddings``: condition the base on ``sum_i alpha_i(s) emb(skill_i)`` (the same
    state-dependent weights as the adapters) instead of the caller's skill id. ``input_maps``:
    the sources' argument bindings (:class:`~robot_skills.policies.psec.PSECPolicy`).

    Raises:
        ValueError: a ``full`` skill, or skills adapting different layers. Load errors as
            :func:`load_skill`.
    """
    from robot_skills.policies.psec import PSECPolicy

    pairs, ids = _adapter_pairs(library, refs)
    info, base_state = library.base()
    base = GoalConditionedBC(info.arch)
    base.load_state_dict(base_state)
    return PSECPolicy(base, pairs, hidden=hidden, reg=reg, loss=loss,
                      skill_ids=ids if mix_embeddings else None, input_maps=input_maps)


def blender_from_library(library: SkillLibrary, refs: Sequence[str], hidden: int = 128,
                         goal_scale: float = 0.5, loss: str = "l1",
                         input_maps: Sequence[Any] | None = None) -> Any:
    """A :class:`~robot_skills.policies.blend.SkillBlender` over the merged networks of ``refs``
    (LoRA or whole-policy skills; ``name`` or ``name@version``), every file verified on load.

    Raises:
        Load errors as :func:`load_skill`; ValueError from :class:`SkillBlender`.
    """
    from robot_skills.policies.blend import SkillBlender
    from robot_skills.skills.skill_dir import build_model

    prims = []
    for r in refs:
        name, ver = split_entry(r)
        v = library.resolve(name, "sim", ver)
        lora = v.manifest["adapter"]["kind"] == "lora"
        sk = load_skill(v.path, library.base()[0] if lora else None)
        prims.append(build_model(sk, library.base()[1] if lora else None, merge=True))
    return SkillBlender(prims, hidden=hidden, goal_scale=goal_scale, loss=loss,
                        input_maps=input_maps)
