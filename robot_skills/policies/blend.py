"""Action-space blending of frozen skill policies (SkillBlender: Kuang et al., 2025,
"SkillBlender: Towards Versatile Humanoid Whole-Body Loco-Manipulation via Skill Blending",
arXiv:2506.09366).

A high-level network reads the state features and outputs, for every frozen primitive ``pi_i``,
a goal ``g_i`` and per-action-dimension weights ``W_i`` (softmax over the skills, per dimension);
the action chunk is ``sum_i W_i * pi_i(g_i)``. Here a primitive's goal is its conditioning
features: ``g_i = s + scale * tanh(delta_i(s))``, a bounded shift of the state features the
primitive was trained on (``scale`` in normalised feature units, default 0.5), so the high level
can re-target a primitive (e.g. a place at a shifted position). Both heads start at zero: no goal
shift and ``W_i = 1/K`` (the plain average of the primitives). Only the high-level network trains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from robot_skills.policies.bc import GoalConditionedBC, chunk_loss
from robot_skills.policies.psec import stack_input_maps


class SkillBlender(nn.Module):
    """Blend frozen :class:`GoalConditionedBC` primitives in action space.

    Args:
        primitives: ``[(model, skill_id)]``, frozen (merged skills).
        hidden: width of the high-level network.
        goal_scale: bound of the goal shift, normalised feature units (0 = no goal head).
        loss: chunk loss kind.
        input_maps: per primitive an affine map ``(M_i (F, F), c_i (F,))`` of the features to
            that primitive's own argument binding (see
            :class:`~robot_skills.policies.psec.PSECPolicy`); primitive ``i`` then reads
            ``M_i g_i + c_i``. None: every primitive reads ``g_i``.

    Raises:
        ValueError: no primitives, primitives with different chunk / action / feature sizes,
            or input maps of another count or shape.
    """

    def __init__(self, primitives: Sequence[tuple[GoalConditionedBC, int]], hidden: int = 128,
                 goal_scale: float = 0.5, loss: str = "l1",
                 input_maps: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> None:
        super().__init__()
        if not primitives:
            raise ValueError("SkillBlender needs at least one primitive")
        cfgs = {(m.cfg.chunk_size, m.cfg.action_dim, m.cfg.feature_dim) for m, _ in primitives}
        if len(cfgs) != 1:
            raise ValueError(f"primitives differ in (chunk, action, feature) sizes: {cfgs}")
        self.primitives = nn.ModuleList(m for m, _ in primitives)
        for p in self.primitives.parameters():
            p.requires_grad_(False)
        self.register_buffer("skill_ids", torch.tensor([int(s) for _, s in primitives]))
        (self.chunk, self.adim, self.fdim), = cfgs
        self.k = len(primitives)
        bm, bc = stack_input_maps(input_maps, self.k, self.fdim)
        self.register_buffer("bind_m", bm, persistent=False)
        self.register_buffer("bind_c", bc, persistent=False)
        self.goal_scale = float(goal_scale)
        self.loss_kind = loss
        self.trunk = nn.Sequential(nn.Linear(self.fdim, hidden), nn.GELU(approximate="tanh"))
        self.goal_head = nn.Linear(hidden, self.k * self.fdim)
        self.weight_head = nn.Linear(hidden, self.k * self.adim)
        for head in (self.goal_head, self.weight_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def weights(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, F) -> (B, K, A)`` weights, softmax over the skills per action dimension."""
        h = self.trunk(features)
        return torch.softmax(self.weight_head(h).view(-1, self.k, self.adim), dim=1)

    def forward(self, features: torch.Tensor, skill_id: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``(B, F) -> (B, H, A)`` normalised actions (``skill_id`` is ignored: each primitive
        uses its own)."""
        b = features.shape[0]
        h = self.trunk(features)
        w = torch.softmax(self.weight_head(h).view(b, self.k, self.adim), dim=1)
        goals = features[:, None, :] + self.goal_scale * torch.tanh(
            self.goal_head(h).view(b, self.k, self.fdim))
        if self.bind_m is not None:
            goals = torch.einsum("kfg,bkg->bkf", self.bind_m, goals) + self.bind_c
        out = features.new_zeros(b, self.chunk, self.adim)
        for i, m in enumerate(self.primitives):
            sid = self.skill_ids[i].expand(b)
            out = out + w[:, i, None, :] * m(goals[:, i], sid)
        return out

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Masked chunk loss of one batch."""
        pred = self(batch["features"], batch.get("skill_id"))
        return chunk_loss(pred.float(), batch["actions"], batch.get("mask"), self.loss_kind)
