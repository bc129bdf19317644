"""LoRA adapters for ``nn.Linear`` layers (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large
Language Models", arXiv:2106.09685).

A wrapped layer computes ``y = W x + b + (alpha / r) * B (A x)`` with the base ``W, b`` frozen,
``A`` of shape ``(r, in)`` initialised like PEFT (Kaiming-uniform, a = sqrt(5)) and ``B`` of shape
``(out, r)`` initialised to zero, so a fresh adapter leaves the network's outputs unchanged.

Adapter state dicts hold only ``"<module>.lora_A"`` / ``"<module>.lora_B"`` tensors; module names
are the dotted paths of the wrapped layers in the base network (e.g. ``"blocks.0.fc"``).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update.

    Args:
        base: the layer to adapt; its parameters are set to ``requires_grad=False``.
        rank: ``r >= 1``, at most ``min(in_features, out_features)``.
        alpha: scaling numerator; the update is multiplied by ``alpha / rank``.
        dropout: dropout on the adapter's input (training only).

    Raises:
        ValueError: on a non-positive or too large rank.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps nn.Linear, got {type(base).__name__}")
        if rank < 1 or rank > min(base.in_features, base.out_features):
            raise ValueError(f"LoRA rank must be in [1, {min(base.in_features, base.out_features)}] "
                             f"for a {base.in_features}->{base.out_features} layer, got {rank}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank = int(rank)
        self.alpha = float(alpha)
        self.scaling = self.alpha / self.rank
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=dev, dtype=dt))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=dev, dtype=dt))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., in) -> (..., out)``."""
        return self.base(x) + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The dense update ``(alpha / r) * B @ A``, shape ``(out, in)``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + delta`` (for inference; no extra matmuls)."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                lin.bias.copy_(self.base.bias)
        return lin


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def linear_layer_names(model: nn.Module) -> list[str]:
    """Dotted names of every ``nn.Linear`` (or already wrapped :class:`LoRALinear`) in ``model``."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear) or isinstance(m, nn.Linear) and not name.endswith(".base"):
            out.append(name)
    return out


def resolve_targets(model: nn.Module, target_layers: Sequence[str] | str | None) -> list[str]:
    """Expand glob patterns (``"blocks.*"``, ``"*"``, ``"all"``, None = all) to Linear layer names.

    Raises:
        ValueError: if a pattern matches no ``nn.Linear`` (the message lists the layers).
    """
    names = linear_layer_names(model)
    if target_layers is None or target_layers == "all" or target_layers == ["all"]:
        return names
    if isinstance(target_layers, str):
        target_layers = [target_layers]
    chosen: list[str] = []
    for pat in target_layers:
        hit = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if not hit:
            raise ValueError(f"LoRA target {pat!r} matches no Linear layer; layers: {names}")
        chosen += [n for n in hit if n not in chosen]
    return [n for n in names if n in chosen]


def inject_lora(model: nn.Module, rank: int, alpha: float,
                target_layers: Sequence[str] | str | None = None, dropout: float = 0.0) -> list[str]:
    """Wrap the target ``nn.Linear`` layers of ``model`` in :class:`LoRALinear`, in place.

    Every parameter of ``model`` is frozen except the new ``lora_A`` / ``lora_B``.

    Args:
        model: the base network.
        rank, alpha, dropout: see :class:`LoRALinear`.
        target_layers: glob patterns over dotted layer names; None or ``"all"`` = every Linear.

    Returns:
        The names of the wrapped layers.

    Raises:
        ValueError: on a bad pattern or rank, or if the model already holds LoRA layers.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("model already has LoRA layers; merge_lora or build a fresh model first")
    names = resolve_targets(model, target_layers)
    for p in model.parameters():
        p.requires_grad_(False)
    for n in names:
        _set_module(model, n, LoRALinear(model.get_submodule(n), rank, alpha, dropout))
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Name -> :class:`LoRALinear` for every adapted layer of ``model``."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable adapter parameters (``lora_A``, ``lora_B`` of every layer)."""
    return [p for m in lora_layers(model).values() for p in (m.lora_A, m.lora_B)]


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{"<layer>.lora_A": (r, in), "<layer>.lora_B": (out, r)}`` detached, contiguous, on CPU."""
    out = {}
    for n, m in lora_layers(model).items():
        out[f"{n}.lora_A"] = m.lora_A.detach().cpu().contiguous().clone()
        out[f"{n}.lora_B"] = m.lora_B.detach().cpu().contiguous().clone()
    return out


def load_lora_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy adapter tensors into ``model``'s LoRA layers (strict: same layers, same shapes).

    Raises:
        ValueError: on missing / unexpected keys, shape mismatch, or tensors holding NaN/inf (the
            message names them).
    """
    layers = lora_layers(model)
    want = {f"{n}.{k}" for n in layers for k in ("lora_A", "lora_B")}
    have = set(state)
    if want != have:
        raise ValueError(f"adapter does not fit the model: missing {sorted(want - have)}, "
                         f"unexpected {sorted(have - want)}")
    for n, m in layers.items():  # check everything before copying anything
        for k in ("lora_A", "lora_B"):
            src, dst = state[f"{n}.{k}"], getattr(m, k)
            if tuple(src.shape) != tuple(dst.shape):
                raise ValueError(f"adapter tensor {n}.{k} has shape {tuple(src.shape)}, "
                                 f"model expects {tuple(dst.shape)} (rank mismatch?)")
            if not bool(torch.isfinite(src).all()):
                raise ValueError(f"adapter tensor {n}.{k} holds NaN/inf")
    with torch.no_grad():
        for n, m in layers.items():
            for k in ("lora_A", "lora_B"):
                dst = getattr(m, k)
                dst.copy_(state[f"{n}.{k}"].to(dst.device, dst.dtype))


def adapter_rank(state: Mapping[str, torch.Tensor]) -> int:
    """The rank of an adapter state dict (rows of any ``lora_A``).

    Raises:
        ValueError: if the state holds no ``lora_A`` or ranks disagree.
    """
    ranks = {int(v.shape[0]) for k, v in state.items() if k.endswith(".lora_A")}
    if len(ranks) != 1:
        raise ValueError(f"adapter has inconsistent or no LoRA ranks: {sorted(ranks)}")
    return ranks.pop()


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` with its merged ``nn.Linear``, in place; returns ``model``."""
    for n, m in list(lora_layers(model).items()):
        _set_module(model, n, m.merged())
    return model


def unload_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` with its untouched base layer, in place; returns ``model``."""
    for n, m in list(lora_layers(model).items()):
        _set_module(model, n, m.base)
    return model
