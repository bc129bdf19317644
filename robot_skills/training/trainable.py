"""What :func:`~robot_skills.training.trainer.fit` trains: a module that owns its loss.

As in Diffusion Policy (Chi et al., 2023), the training loop knows nothing about the model's
objective: it samples a batch (a mapping of tensors sharing a leading sample dimension), calls
``model.compute_loss(batch)`` and back-propagates. Behaviour cloning
(:class:`~robot_skills.policies.bc.GoalConditionedBC`), composition weights or residual heads all
train through the same loop by implementing :class:`Trainable`.

Under DDP the loss must be computed inside ``DistributedDataParallel.forward``: DDP arms its
gradient all-reduce (``Reducer.prepare_for_backward``) only when its own ``forward`` runs, so
``ddp.module.compute_loss(batch)`` would back-propagate without synchronising gradients across
ranks, silently. :class:`LossForward` is the standard fix: a parameter-sharing wrapper whose
``forward(batch)`` *is* ``model.compute_loss(batch)``; the loop wraps that in DDP (and
``torch.compile``) and calls it, so the model keeps its ordinary inference ``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import nn

#: Extra scalars a model may report next to its loss (logged as ``<stage>/<name>``).
Metrics = Mapping[str, float | torch.Tensor]
#: What ``compute_loss`` returns: a scalar loss, or ``(loss, metrics)``.
LossOutput = torch.Tensor | tuple[torch.Tensor, Metrics]


@runtime_checkable
class Trainable(Protocol):
    """A ``torch.nn.Module`` that computes its own training loss.

    Required:
        ``compute_loss(batch) -> Tensor | (Tensor, metrics)``: ``batch`` maps names to tensors
        whose first dimension is the batch (``B``), on the model's device, already indexed from
        the training data given to ``fit``. The loss is a differentiable 0-d float tensor (any
        float dtype; it is reported as float32/float64). ``metrics`` optionally maps names to
        scalars (python floats or 0-d tensors) logged alongside the loss; they need not be
        differentiable.

    Optional:
        ``loss_weight(batch) -> float``: how many terms the loss of ``batch`` averages over (e.g.
        real, unpadded chunk entries). :func:`~robot_skills.training.trainer.evaluate_loss` uses
        it to reduce several batches to the exact mean over the whole set; without it every
        sample counts once.

    Parameters with ``requires_grad=False`` (a frozen base under LoRA) are not optimised.
    """

    def compute_loss(self, batch: Mapping[str, torch.Tensor]) -> LossOutput:
        """Scalar training loss of ``batch`` (see the class docstring)."""
        ...


def check_trainable(model: object) -> None:
    """Raise ``TypeError`` unless ``model`` is an ``nn.Module`` with a callable ``compute_loss``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit needs a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(model, "compute_loss", None)):
        raise TypeError(f"{type(model).__name__} has no compute_loss(batch) method; "
                        "see robot_skills.training.trainable.Trainable")


def split_loss(out: LossOutput, where: str = "compute_loss", as_float: bool = True
               ) -> tuple[torch.Tensor, dict[str, float | torch.Tensor]]:
    """Normalise a ``compute_loss`` result to ``(loss, metrics)``.

    Args:
        out: a 0-d tensor, or ``(loss, metrics)`` with ``metrics`` a mapping of scalars.
        where: name used in error messages.
        as_float: read tensor metrics into python floats (synchronises with the device); False
            keeps them as detached 0-d tensors (the training loop reads them in batches).

    Returns:
        The 0-d loss tensor (unchanged, still attached to the graph) and the metrics as python
        floats (or detached tensors with ``as_float=False``).

    Raises:
        TypeError: ``out`` is neither form, or a metric is not a scalar.
        ValueError: the loss is not a 0-d floating-point tensor.
    """
    metrics: Metrics = {}
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], Mapping):
            raise TypeError(f"{where} must return a loss tensor or (loss, metrics dict), got a "
                            f"tuple of {len(out)} with {type(out[-1]).__name__ if out else None}")
        out, metrics = out
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{where} must return a torch.Tensor loss, got {type(out).__name__}")
    if out.dim() != 0 or not out.is_floating_point():
        raise ValueError(f"{where} must return a 0-d floating-point loss, got shape "
                         f"{tuple(out.shape)} dtype {out.dtype}")
    vals: dict[str, float | torch.Tensor] = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise TypeError(f"{where} metric {k!r} must be a scalar, got shape {tuple(v.shape)}")
            vals[str(k)] = float(v.detach()) if as_float else v.detach().reshape(())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            vals[str(k)] = float(v)
        else:
            raise TypeError(f"{where} metric {k!r} must be a float or 0-d tensor, "
                            f"got {type(v).__name__}")
    return out, vals


def batch_size_of(data: Mapping[str, torch.Tensor]) -> int:
    """Common leading dimension ``N`` of every tensor in ``data``.

    Raises:
        ValueError: ``data`` is empty, holds a non-tensor or a 0-d tensor, or the leading
            dimensions differ (the message names each key's length).
    """
    if not data:
        raise ValueError("no training data: the mapping of tensors is empty")
    sizes = {}
    for k, v in data.items():
        if not isinstance(v, torch.Tensor) or v.dim() == 0:
            raise ValueError(f"data[{k!r}] must be a tensor with a leading sample dimension, got "
                             f"{type(v).__name__}{'' if not isinstance(v, torch.Tensor) else ' (0-d)'}")
        sizes[k] = int(v.shape[0])
    if len(set(sizes.values())) != 1:
        raise ValueError(f"data tensors disagree on the number of samples: {sizes}")
    return next(iter(sizes.values()))


def loss_weight(model: nn.Module, batch: Mapping[str, torch.Tensor], n: int) -> float:
    """``model.loss_weight(batch)`` if the model defines it, else ``n`` (samples in the batch)."""
    fn = getattr(model, "loss_weight", None)
    w = float(fn(batch)) if callable(fn) else float(n)
    if not math.isfinite(w) or w < 0:
        raise ValueError(f"{type(model).__name__}.loss_weight returned {w}; must be finite, >= 0")
    return w


class LossForward(nn.Module):
    """Wrap a :class:`Trainable` so that ``forward(batch)`` returns ``model.compute_loss(batch)``.

    The wrapper owns no parameters of its own (``model`` is a registered submodule, so its
    parameters are shared, not copied). Wrap *this* in ``DistributedDataParallel`` and call it:
    the loss is then computed inside DDP's ``forward`` and gradients are all-reduced in
    ``backward`` (calling ``ddp.module.compute_loss`` directly would skip the all-reduce).

    Args:
        model: the module to train.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        check_trainable(model)
        self.model = model

    def forward(self, batch: Mapping[str, torch.Tensor]) -> LossOutput:
        """``self.model.compute_loss(batch)``."""
        return self.model.compute_loss(batch)
