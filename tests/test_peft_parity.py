"""PEFT-format adapters train exactly like the project's own LoRA layers: the same initial adapter
weights from the same seed, the same random stream afterwards, and the same outputs -- so moving
the library to PEFT's format changes no trained skill (measured: the main job's libero_goal table
is identical task by task)."""

from __future__ import annotations

import copy

import torch

from robot_skills.policies.bc import BCConfig, GoalConditionedBC
from robot_skills.policies.lora import inject_lora, lora_layers
from robot_skills.policies.peft_adapter import attach, lora_config


def _pair(targets=None):
    torch.manual_seed(0)
    base = GoalConditionedBC(BCConfig(num_skills=3, hidden=64, layers=2))
    own, peft = copy.deepcopy(base), copy.deepcopy(base)
    torch.manual_seed(7)
    names = inject_lora(own, 8, 16.0, targets)
    after_own = torch.rand(5)
    torch.manual_seed(7)
    attach(peft, lora_config(peft, 8, 16.0, targets))
    after_peft = torch.rand(5)
    return own, peft, names, after_own, after_peft


def test_same_initial_adapter_and_same_random_stream():
    for targets in (None, ["blocks.*"]):
        own, peft, names, a1, a2 = _pair(targets)
        assert torch.equal(a1, a2)  # the generator is where the own implementation leaves it
        layers = lora_layers(own)
        for n in names:
            p = peft.get_submodule(n)
            assert torch.equal(layers[n].lora_A, p.lora_A["default"].weight)
            assert torch.count_nonzero(p.lora_B["default"].weight) == 0


def test_same_outputs_after_the_same_update():
    own, peft, names, _, _ = _pair()
    layers = lora_layers(own)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n in names:
            b = torch.randn(layers[n].lora_B.shape, generator=g)
            layers[n].lora_B.copy_(b)
            peft.get_submodule(n).lora_B["default"].weight.copy_(b)
    feats = torch.randn(4, own.cfg.feature_dim, generator=g)
    ids = torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(own(feats, ids), peft(feats, ids), rtol=1e-5, atol=1e-6)
