"""Context-aware parameter-space composition of LoRA skills (PSEC: Liu et al., ICLR 2025,
"Skill Expansion and Composition in Parameter Space").

A small network reads the state features and outputs one weight per skill; every adapted layer
computes ``W0 x + b + sum_i alpha_i(s) s_i B_i A_i x`` with the base ``W0, b`` and every skill's
``A_i, B_i`` frozen (``s_i = lora_alpha_i / r_i``). Only the weight network trains, on a few
demonstrations of the new behaviour, through the project's one ``fit`` loop
(:meth:`PSECPolicy.compute_loss`).

Choices (documented, as the issue asks):

* **weight constraint**: ``alpha(s) = softmax(logits(s))`` — a convex combination of the skills'
  updates, so the composed update never exceeds the largest single skill's in any direction the
  skills agree on, and with few demonstrations the weights cannot blow up. The last layer of the
  weight network starts at zero: ``alpha = 1/K`` (the uniform linear merge) before training.
* **regulariser**: ``reg * mean(logits^2)`` (default ``reg = 1e-3``), pulling towards the uniform
  mix when the demonstrations do not say otherwise (k = 5 demos is little data).

Inference: the adapters' ``A`` (and ``B``) are concatenated per layer, so a composed layer costs
one extra ``(in -> sum r_i -> out)`` low-rank product regardless of ``K``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robot_skills.policies.bc import GoalConditionedBC, chunk_loss, mix_skill_embedding


def _common_layers(adapters: Sequence[Mapping[str, Any]], who: str) -> list[str]:
    """The sorted layer names every adapter adapts.

    Raises:
        ValueError: no adapter, or adapters that adapt different layers.
    """
    if not adapters:
        raise ValueError(f"{who} needs at least one adapter")
    layers = sorted(adapters[0])
    if any(sorted(a) != layers for a in adapters):
        raise ValueError(f"every adapter must adapt the same layers; got "
                         f"{[sorted(a) for a in adapters]}")
    return layers


def _freeze_and_wrap(base: nn.Module, layers: Sequence[str],
                     adapters: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor, float]]],
                     make: Any) -> None:
    """Freeze every parameter of ``base`` and replace each of ``layers`` (an ``nn.Linear``) by
    ``make(linear, [A_i], [B_i], [scale_i])`` over the adapters' ``(A, B, scale)`` tuples, in place.

    Raises:
        ValueError: a layer that is not ``nn.Linear``.
    """
    for p in base.parameters():
        p.requires_grad_(False)
    for name in layers:
        lin = base.get_submodule(name)
        if not isinstance(lin, nn.Linear):
            raise ValueError(f"layer {name!r} of the base is not nn.Linear")
        new = make(lin, [a[name][0] for a in adapters], [a[name][1] for a in adapters],
                   [a[name][2] for a in adapters])
        parent, _, child = name.rpartition(".")
        setattr(base.get_submodule(parent) if parent else base, child, new)


def _source_ids(skill_ids: Sequence[int] | None, k: int, base: GoalConditionedBC
                ) -> torch.Tensor | None:
    """``skill_ids`` as a ``(K,)`` int64 tensor (None stays None).

    Raises:
        ValueError: another length than the ``k`` adapters, or an id outside the base's table.
    """
    if skill_ids is None:
        return None
    ids = [int(i) for i in skill_ids]
    if len(ids) != k:
        raise ValueError(f"{len(ids)} skill ids for {k} adapters")
    if any(not 0 <= i < base.cfg.num_skills for i in ids):
        raise ValueError(f"skill ids {ids} outside the base's {base.cfg.num_skills} skills")
    return torch.tensor(ids, dtype=torch.long)


def stack_input_maps(input_maps: Sequence[tuple[torch.Tensor, torch.Tensor]] | None, k: int,
              dim: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Stack per-source affine input maps ``(M_i (F, F), c_i (F,))`` into ``(K, F, F), (K, F)``.

    Raises:
        ValueError: another count than ``k`` or maps of another shape than ``(dim, dim)`` /
            ``(dim,)``.
    """
    if input_maps is None:
        return None, None
    if len(input_maps) != k:
        raise ValueError(f"{len(input_maps)} input maps for {k} adapters")
    ms = [torch.as_tensor(m, dtype=torch.float32) for m, _ in input_maps]
    cs = [torch.as_tensor(c, dtype=torch.float32) for _, c in input_maps]
    if any(m.shape != (dim, dim) for m in ms) or any(c.shape != (dim,) for c in cs):
        raise ValueError(f"input maps must be ({dim}, {dim}) matrices and ({dim},) offsets, got "
                         f"{[tuple(m.shape) for m in ms]} / {[tuple(c.shape) for c in cs]}")
    return torch.stack(ms), torch.stack(cs)


def bind_inputs(features: torch.Tensor, maps: torch.Tensor, offsets: torch.Tensor
                ) -> torch.Tensor:
    """Each source's view of the features: ``(B, F) -> (B, K, F)``, ``x_i = M_i x + c_i``."""
    return torch.einsum("kfg,bg->bkf", maps, features) + offsets


class _Alpha:
    """Holds the current per-sample skill weights ``(B, K)`` for every :class:`PSECLinear`."""

    def __init__(self) -> None:
        self.value: torch.Tensor | None = None


class PSECLinear(nn.Module):
    """A frozen ``nn.Linear`` plus ``K`` frozen LoRA updates mixed by state-dependent weights.

    Args:
        base: the layer (frozen).
        As: per skill ``(r_i, in)``; Bs: per skill ``(out, r_i)``; scalings: ``lora_alpha_i / r_i``.
        alpha: the shared weight holder, set by :class:`PSECPolicy` before each forward.

    Raises:
        ValueError: shapes that do not fit the layer, or lists of different lengths.
    """

    def __init__(self, base: nn.Linear, As: Sequence[torch.Tensor], Bs: Sequence[torch.Tensor],
                 scalings: Sequence[float], alpha: _Alpha) -> None:
        super().__init__()
        if not (len(As) == len(Bs) == len(scalings)) or not As:
            raise ValueError("PSECLinear needs one A, B and scaling per skill")
        for a, b in zip(As, Bs):
            if a.shape[1] != base.in_features or b.shape[0] != base.out_features or \
                    a.shape[0] != b.shape[1]:
                raise ValueError(f"LoRA pair {tuple(a.shape)}, {tuple(b.shape)} does not fit a "
                                 f"{base.in_features}->{base.out_features} layer")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        # the scaling s_i is folded into A_i: rows of A are s_i A_i, concatenated over skills
        self.register_buffer("A", torch.cat([a.float() * float(s)
                                             for a, s in zip(As, scalings)], 0))  # (R, in)
        self.register_buffer("B", torch.cat([b.float() for b in Bs], 1))  # (out, R)
        seg = torch.cat([torch.full((a.shape[0],), i, dtype=torch.long) for i, a in enumerate(As)])
        self.register_buffer("seg", seg)  # (R,) skill of each rank row
        self._alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in) -> (B, out)``; needs the holder's per-rank-row weights ``(B, R)``."""
        a = self._alpha.value
        if a is None:
            raise RuntimeError("PSECLinear called outside PSECPolicy.forward (no skill weights)")
        # W0 x + b + B diag(alpha_seg) (sA) x, with the bias add fused into one addmm
        low = ((x @ self.A.t()) * a) @ self.B.t()
        if self.base.bias is None:
            return x @ self.base.weight.t() + low
        return torch.addmm(self.base.bias, x, self.base.weight.t()) + low


class PSECPolicy(nn.Module):
    """A :class:`GoalConditionedBC` whose adapted layers mix ``K`` frozen LoRA skills with
    weights from a small state network.

    Args:
        base: the base network with its weights loaded (modified in place: target layers wrapped).
        adapters: per skill ``(targets, {layer: (A, B, scaling)})``-like mapping
            ``{layer: (A (r, in), B (out, r), scaling)}``; every skill must adapt the same layers.
        hidden: width of the weight network (features -> hidden -> K).
        reg: the logit regulariser's coefficient.
        loss: chunk loss kind (``"l1"`` or ``"mse"``).
        skill_ids: the sources' rows in the base's skill-embedding table, one per adapter.
            Given, the skill-conditioning input is mixed with the same weights,
            ``sum_i alpha_i(s) emb(skill_i)`` (each adapter was trained under its own
            embedding; a new behaviour has none), and the ``skill_id`` passed to
            :meth:`forward` is ignored. None: the caller's ``skill_id`` conditions the base.
        input_maps: per adapter an affine map ``(M_i (F, F), c_i (F,))`` of the (normalised)
            features to the features *that skill* reads: its argument binding (a ``pick`` inside
            a ``pick_place(obj, target)`` sees only ``obj``, in its first slot). Given, the
            network reads ``sum_i alpha_i(s) (M_i x + c_i)`` — exactly skill ``i`` on its own
            binding when ``alpha`` is one-hot — while the weight network reads ``x`` itself.
            None: every skill reads ``x``.

    Raises:
        ValueError: no adapters, adapters over different layers, or ``skill_ids`` /
            ``input_maps`` of another length than ``adapters``.
    """

    def __init__(self, base: GoalConditionedBC,
                 adapters: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor, float]]],
                 hidden: int = 64, reg: float = 1e-3, loss: str = "l1",
                 skill_ids: Sequence[int] | None = None,
                 input_maps: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> None:
        super().__init__()
        layers = _common_layers(adapters, "PSEC")
        self.register_buffer("source_ids", _source_ids(skill_ids, len(adapters), base),
                             persistent=False)
        self.k = len(adapters)
        self.reg = float(reg)
        self.loss_kind = loss
        self.alpha_holder = _Alpha()
        _freeze_and_wrap(base, layers, adapters,
                         lambda lin, a, b, s: PSECLinear(lin, a, b, s, self.alpha_holder))
        self.policy = base
        segs = [base.get_submodule(n).seg for n in layers]
        if any(not torch.equal(x, segs[0]) for x in segs):
            raise ValueError("PSEC needs each skill's rank to be the same in every layer")
        self.register_buffer("_seg", segs[0].clone(), persistent=False)
        fd = base.cfg.feature_dim
        bm, bc = stack_input_maps(input_maps, self.k, fd)
        self.register_buffer("bind_m", bm, persistent=False)
        self.register_buffer("bind_c", bc, persistent=False)
        self.weight_net = nn.Sequential(nn.Linear(fd, hidden), nn.GELU(approximate="tanh"),
                                        nn.Linear(hidden, self.k))
        nn.init.zeros_(self.weight_net[-1].weight)
        nn.init.zeros_(self.weight_net[-1].bias)
        self._last_logits: torch.Tensor | None = None

    def skill_weights(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, FEATURE_DIM) -> (B, K)`` softmax weights."""
        logits = self.weight_net(features)
        self._last_logits = logits
        return torch.softmax(logits, dim=-1)

    def forward(self, features: torch.Tensor, skill_id: torch.Tensor) -> torch.Tensor:
        """``(B, FEATURE_DIM), (B,) -> (B, H, 7)`` normalised actions."""
        # every layer shares the same skills and ranks: expand (B, K) -> (B, R) once
        alpha = self.skill_weights(features)
        self.alpha_holder.value = alpha[:, self._seg]
        x = features
        if self.bind_m is not None:
            x = (alpha[:, :, None] * bind_inputs(features, self.bind_m, self.bind_c)).sum(1)
        try:
            if self.source_ids is not None:
                return self.policy(x, None,
                                   mix_skill_embedding(self.policy, self.source_ids, alpha))
            return self.policy(x, skill_id)
        finally:
            self.alpha_holder.value = None

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Masked chunk loss plus ``reg * mean(logits^2)`` (see the module doc)."""
        pred = self(batch["features"], batch["skill_id"])
        loss = chunk_loss(pred.float(), batch["actions"], batch.get("mask"), self.loss_kind)
        assert self._last_logits is not None
        return loss + self.reg * self._last_logits.float().pow(2).mean()


def peft_pairs(state: Mapping[str, torch.Tensor], lora_alpha: float, r: int
               ) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """PEFT adapter tensors -> ``{layer: (A, B, lora_alpha / r)}`` for :class:`PSECPolicy`."""
    prefix = "base_model.model."
    out: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}
    for k, v in state.items():
        if k.endswith(".lora_A.weight"):
            layer = k[len(prefix):-len(".lora_A.weight")]
            out[layer] = (v, state[f"{prefix}{layer}.lora_B.weight"], float(lora_alpha) / r)
    return out


class CATLinear(PSECLinear):
    """LoRA Soups' CAT layer (Prabhakar et al., 2024, "LoRA Soups: Merging LoRAs for Practical
    Skill Composition Tasks", arXiv:2410.13025): ``W0 x + b + sum_i w_i B_i (s_i A_i) x`` with one
    learned scalar ``w_i`` per skill *per layer* (state-independent), the adapters frozen.

    Args:
        base, As, Bs, scalings: as :class:`PSECLinear`.
        init: initial ``w_i`` (default ``1/K``: the uniform ``cat`` merge).
    """

    def __init__(self, base: nn.Linear, As: Sequence[torch.Tensor], Bs: Sequence[torch.Tensor],
                 scalings: Sequence[float], init: float | None = None) -> None:
        super().__init__(base, As, Bs, scalings, _Alpha())
        k = len(As)
        self.w = nn.Parameter(torch.full((k,), 1.0 / k if init is None else float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in) -> (..., out)``."""
        low = ((x @ self.A.t()) * self.w[self.seg]) @ self.B.t()
        return self.base(x) + low


class CATPolicy(nn.Module):
    """A :class:`GoalConditionedBC` whose adapted layers are :class:`CATLinear`: only the
    per-layer skill weights train (LoRA Soups' CAT), with the same chunk loss.

    Args:
        base: the base network with its weights loaded (modified in place).
        adapters: as :class:`PSECPolicy`.
        loss: chunk loss kind.
        skill_ids: as :class:`PSECPolicy`; the skill-conditioning input is then
            ``sum_i v_i emb(skill_i)`` with its own learned ``(K,)`` weights ``v`` (initial
            ``1/K``), the embedding table being one more "layer".
        input_maps: as :class:`PSECPolicy`; the network reads ``sum_i v_i (M_i x + c_i)`` with
            the same learned (state-independent) ``v``, created when either is given.

    Raises:
        ValueError: no adapters, adapters over different layers, or ``skill_ids`` /
            ``input_maps`` of another length.
    """

    def __init__(self, base: GoalConditionedBC,
                 adapters: Sequence[Mapping[str, tuple[torch.Tensor, torch.Tensor, float]]],
                 loss: str = "l1", skill_ids: Sequence[int] | None = None,
                 input_maps: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> None:
        super().__init__()
        layers = _common_layers(adapters, "CAT")
        self.register_buffer("source_ids", _source_ids(skill_ids, len(adapters), base),
                             persistent=False)
        bm, bc = stack_input_maps(input_maps, len(adapters), base.cfg.feature_dim)
        self.register_buffer("bind_m", bm, persistent=False)
        self.register_buffer("bind_c", bc, persistent=False)
        self.emb_w = (nn.Parameter(torch.full((len(adapters),), 1.0 / len(adapters)))
                      if self.source_ids is not None or bm is not None else None)
        self.loss_kind = loss
        _freeze_and_wrap(base, layers, adapters, CATLinear)
        self.policy = base
        self.layers = layers

    def layer_weights(self) -> dict[str, torch.Tensor]:
        """Layer name -> its ``(K,)`` skill weights (detached)."""
        return {n: self.policy.get_submodule(n).w.detach().clone() for n in self.layers}

    def forward(self, features: torch.Tensor, skill_id: torch.Tensor) -> torch.Tensor:
        """``(B, FEATURE_DIM), (B,) -> (B, H, 7)`` normalised actions."""
        x = features
        if self.bind_m is not None:
            x = torch.einsum("k,bkf->bf", self.emb_w,
                             bind_inputs(features, self.bind_m, self.bind_c))
        if self.source_ids is not None:
            e = mix_skill_embedding(self.policy, self.source_ids, self.emb_w)
            return self.policy(x, None, e.expand(features.shape[0], -1))
        return self.policy(x, skill_id)

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Masked chunk loss of one batch (no regulariser)."""
        pred = self(batch["features"], batch["skill_id"])
        return chunk_loss(pred.float(), batch["actions"], batch.get("mask"), self.loss_kind)
