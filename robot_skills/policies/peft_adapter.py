"""LoRA adapters in PEFT's on-disk format, built with the ``peft`` library.

A skill's adapter is the pair PEFT itself writes and reads (``PeftModel.from_pretrained``):

* ``adapter_config.json`` — :class:`peft.LoraConfig` as JSON (``peft_type: "LORA"``, ``r``,
  ``lora_alpha``, ``target_modules``, ...); ``base_model_name_or_path`` holds
  ``"sha256:<hex>"``, the content hash of the base network the adapter was trained on.
* ``adapter_model.safetensors`` — the tensors ``base_model.model.<layer>.lora_A.weight``
  ``(r, in)`` and ``...lora_B.weight`` ``(out, r)`` (PEFT's key layout, metadata
  ``{"format": "pt"}``).

The update of a layer is ``W x + b + (lora_alpha / r) B A x`` (Hu et al., 2021, LoRA,
arXiv:2106.09685); :func:`apply_adapter` folds it into the weights (PEFT's ``merge_and_unload``),
so inference runs a plain :class:`~robot_skills.policies.bc.GoalConditionedBC` with no extra
matmuls. ``peft`` is imported lazily (it pulls in ``transformers``, ~2 s).

Files are written deterministically (sorted JSON keys, sorted target list, one metadata key), so
identical adapters hash identically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from safetensors.torch import save as st_save
from torch import nn

from robot_skills.policies.lora import resolve_targets

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."
DEFAULT_RANK = 8


class AdapterError(ValueError):
    """An adapter's config or tensors do not fit the base network (or are malformed)."""


def base_ref(base_sha256: str) -> str:
    """The ``base_model_name_or_path`` recorded for a base with content hash ``base_sha256``."""
    return f"sha256:{base_sha256}"


def lora_config(model: nn.Module, rank: int = DEFAULT_RANK, alpha: float | None = None,
                targets: Sequence[str] | str | None = None, dropout: float = 0.0,
                base_sha256: str | None = None) -> Any:
    """A :class:`peft.LoraConfig` for ``model``.

    Args:
        model: the base network (used to expand ``targets``).
        rank: ``r >= 1`` (default 8).
        alpha: ``lora_alpha``; None = ``2 * rank``.
        targets: glob patterns over dotted ``nn.Linear`` names (``"blocks.*"``); None or ``"all"``
            = every Linear layer. Expanded to exact names (see
            :func:`robot_skills.policies.lora.resolve_targets`).
        dropout: ``lora_dropout`` (training only).
        base_sha256: content hash of the base, recorded as ``base_model_name_or_path``.

    Raises:
        ValueError: rank < 1, or a pattern matching no Linear layer.
    """
    from peft import LoraConfig

    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an integer >= 1, got {rank!r}")
    names = resolve_targets(model, targets)
    return LoraConfig(r=rank, lora_alpha=float(2 * rank if alpha is None else alpha),
                      target_modules=sorted(names), lora_dropout=float(dropout), bias="none",
                      base_model_name_or_path=base_ref(base_sha256) if base_sha256 else None)


def attach(model: nn.Module, config: Any, init_order: Sequence[str] | None = None) -> Any:
    """Wrap ``model`` in a :class:`peft.PeftModel` (in place: its target Linear layers become PEFT
    LoRA layers; only the LoRA tensors require grad). ``model`` itself keeps its methods
    (``compute_loss``), so it trains through the project's ``fit`` loop unchanged.

    The adapter starts as PEFT's default LoRA init (``A`` Kaiming-uniform with ``a = sqrt(5)``,
    ``B = 0``), drawn from the global torch generator one layer after another in ``init_order``
    (default: :func:`robot_skills.policies.lora.resolve_targets` order), and the generator is
    left exactly as those draws leave it -- PEFT's own module construction draws and discards
    extra numbers. So a seeded run starts from, and trains through, the same random stream
    whichever LoRA implementation is used (:func:`robot_skills.policies.lora.inject_lora` draws
    the same way).
    """
    import math

    from peft import get_peft_model

    order = list(init_order) if init_order is not None else \
        resolve_targets(model, sorted(config.target_modules))  # model order, before wrapping
    cpu_state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    peft_model = get_peft_model(model, config)
    torch.random.set_rng_state(cpu_state)
    if cuda_state is not None:
        torch.cuda.set_rng_state_all(cuda_state)
    for name in order:
        layer = model.get_submodule(name)
        with torch.no_grad():
            nn.init.kaiming_uniform_(layer.lora_A["default"].weight, a=math.sqrt(5))
            layer.lora_B["default"].weight.zero_()
    return peft_model


def adapter_state(peft_model: Any) -> dict[str, torch.Tensor]:
    """The adapter tensors of ``peft_model`` in PEFT's key layout, detached, contiguous, CPU."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous().clone()
            for k, v in get_peft_model_state_dict(peft_model).items()}


def to_peft_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept PEFT keys as they are and convert the project's older ``<layer>.lora_A`` /
    ``<layer>.lora_B`` keys (same shapes) to ``base_model.model.<layer>.lora_A.weight``.

    Raises:
        AdapterError: a key of neither form.
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith(PEFT_PREFIX) and k.endswith((".lora_A.weight", ".lora_B.weight")):
            out[k] = v
        elif k.endswith((".lora_A", ".lora_B")):
            out[f"{PEFT_PREFIX}{k}.weight"] = v
        else:
            raise AdapterError(f"adapter tensor {k!r} is neither PEFT's "
                               "'base_model.model.<layer>.lora_A.weight' nor '<layer>.lora_A'")
    return out


def layers_of(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The dotted layer names an adapter state (PEFT keys) adapts, sorted."""
    return sorted({k[len(PEFT_PREFIX):].rsplit(".", 2)[0] for k in state})


def config_dict(rank: int, alpha: float, targets: Sequence[str], base_sha256: str | None,
                dropout: float = 0.0) -> dict[str, Any]:
    """PEFT's ``adapter_config.json`` content for a LoRA on exact layer names (no model needed).

    Raises:
        ValueError: rank < 1 or no targets.
    """
    from peft import LoraConfig

    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"LoRA rank must be an integer >= 1, got {rank!r}")
    if not targets:
        raise ValueError("a LoRA adapter needs at least one target layer")
    cfg = LoraConfig(r=rank, lora_alpha=float(alpha), target_modules=sorted(targets),
                     lora_dropout=float(dropout), bias="none",
                     base_model_name_or_path=base_ref(base_sha256) if base_sha256 else None)
    d = cfg.to_dict()
    d["target_modules"] = sorted(d["target_modules"])
    d["inference_mode"] = True
    return json.loads(json.dumps(d, default=list))


def config_bytes(d: Mapping[str, Any]) -> bytes:
    """``adapter_config.json`` bytes (sorted keys, so equal configs hash equally)."""
    return (json.dumps(dict(d), indent=2, sort_keys=True, default=list) + "\n").encode()


def weights_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """``adapter_model.safetensors`` bytes (PEFT keys, metadata ``{"format": "pt"}``)."""
    return st_save({k: v.detach().cpu().contiguous() for k, v in state.items()},
                   metadata={"format": "pt"})


def parse_config(data: bytes, where: str) -> dict[str, Any]:
    """Parse and validate ``adapter_config.json``.

    Returns:
        The dict, with ``r`` (int >= 1), ``lora_alpha`` (number), ``target_modules`` (list of str).

    Raises:
        AdapterError: not JSON, not ``peft_type: LORA``, or a mistyped field (names ``where``).
    """
    try:
        d = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise AdapterError(f"{where} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise AdapterError(f"{where} must hold a JSON object, got {type(d).__name__}")
    if d.get("peft_type") != "LORA":
        raise AdapterError(f"{where}: peft_type must be 'LORA', got {d.get('peft_type')!r}")
    r = d.get("r")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise AdapterError(f"{where}: r must be an integer >= 1, got {r!r}")
    a = d.get("lora_alpha")
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        raise AdapterError(f"{where}: lora_alpha must be a number, got {a!r}")
    t = d.get("target_modules")
    if not isinstance(t, list) or not t or not all(isinstance(x, str) for x in t):
        raise AdapterError(f"{where}: target_modules must be a non-empty list of layer names, "
                           f"got {t!r}")
    for k in ("use_dora", "use_rslora"):
        if d.get(k):
            raise AdapterError(f"{where}: {k}=true is not supported by this project's loader")
    return d


def check_state(state: Mapping[str, torch.Tensor], cfg: Mapping[str, Any],
                model: nn.Module, where: str) -> None:
    """Check adapter tensors against their config and the base network before building anything.

    Raises:
        AdapterError: missing / unexpected tensors, a target that is not a Linear layer of
            ``model``, or a tensor whose shape is not ``(r, in)`` / ``(out, r)``.
    """
    r = int(cfg["r"])
    targets = list(cfg["target_modules"])
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    bad = [t for t in targets if t not in linears]
    if bad:
        raise AdapterError(f"{where}: target layers {bad} are not Linear layers of the base "
                           f"network; it has {sorted(linears)}")
    want = {f"{PEFT_PREFIX}{t}.lora_{ab}.weight" for t in targets for ab in "AB"}
    have = set(state)
    if want != have:
        raise AdapterError(f"{where}: adapter tensors do not match adapter_config.json: missing "
                           f"{sorted(want - have)}, unexpected {sorted(have - want)}")
    for t in targets:
        lin = linears[t]
        for ab, shape in (("A", (r, lin.in_features)), ("B", (lin.out_features, r))):
            got = tuple(state[f"{PEFT_PREFIX}{t}.lora_{ab}.weight"].shape)
            if got != shape:
                raise AdapterError(f"{where}: tensor {t}.lora_{ab} has shape {got}, expected "
                                   f"{shape} for r={r} on a {lin.in_features}->"
                                   f"{lin.out_features} layer")


def apply_adapter(model: nn.Module, cfg: Mapping[str, Any], state: Mapping[str, torch.Tensor],
                  merge: bool = True, where: str = ADAPTER_WEIGHTS_FILE) -> Any:
    """Load a PEFT LoRA adapter onto ``model`` (the base network with its weights loaded).

    Args:
        model: the base network; modified in place.
        cfg: a parsed ``adapter_config.json`` (:func:`parse_config`).
        state: adapter tensors in PEFT's key layout.
        merge: True = fold the update into the weights and return the plain network (PEFT's
            ``merge_and_unload``); False = return the :class:`peft.PeftModel` (for training or
            composition).
        where: the file named in errors.

    Raises:
        AdapterError: as :func:`check_state`, or PEFT refusing the tensors.
    """
    from peft import LoraConfig, set_peft_model_state_dict

    check_state(state, cfg, model, where)
    known = set(LoraConfig.__dataclass_fields__)
    # the base is checked by its content hash before this point; PEFT would warn that it renames
    # the recorded base_model_name_or_path, so it is not passed on
    kw = {k: v for k, v in cfg.items()
          if k in known and k not in ("peft_version", "base_model_name_or_path")}
    kw["inference_mode"] = merge
    try:
        pm = attach(model, LoraConfig(**kw))
        res = set_peft_model_state_dict(pm, dict(state))
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise AdapterError(f"{where}: peft refused the adapter: {e}") from e
    unexpected = list(getattr(res, "unexpected_keys", []) or [])
    if unexpected:
        raise AdapterError(f"{where}: peft did not use tensors {unexpected}")
    if merge:
        return pm.merge_and_unload()
    return pm
