"""A small LoRA skill library with random adapters, written the way ``rs-train`` writes one
(``save_base`` + ``save_skill`` in PEFT's format), for tests of merges and compositions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from robot_skills.domain.verbs import SKILL_SPECS
from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.normalization import NormStats
from robot_skills.policies.peft_adapter import adapter_state, attach, lora_config
from robot_skills.skills.skill_dir import BasePolicy, save_base, save_skill


def write_random_lora_library(root: Path, arch: BCConfig, skills: Sequence[str],
                              stats: NormStats, rank: Callable[[int], int] = lambda i: 4
                              ) -> tuple[GoalConditionedBC, BasePolicy]:
    """A base (seed 0) and one LoRA adapter per skill (seed ``10 + i``, rank ``rank(i)``,
    entries ~ N(0, 0.3)) under ``root``; skill ``i`` has skill id ``i``.

    Returns:
        The base network and the saved base's info.
    """
    torch.manual_seed(0)
    base = GoalConditionedBC(arch)
    info = save_base(root, base.state_dict(), arch, list(skills))
    for i, s in enumerate(skills):
        torch.manual_seed(10 + i)
        m = GoalConditionedBC(arch)
        m.load_state_dict(base.state_dict())
        pm = attach(m, lora_config(m, rank=rank(i)))
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_" in n:
                    p.normal_(0, 0.3)
        save_skill(root / s, spec=SKILL_SPECS[s], adapter_state=adapter_state(pm), stats=stats,
                   adapter={"kind": "lora"}, base=info, skill_id=i)
    return base, info
