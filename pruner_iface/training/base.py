"""Mechanism: a training-time part listed in the Pruner's `training` option — a penalty added to
gradients (group lasso, slim), a pattern held fixed (pattern lock), masks staged over several
optimizer steps (progressive), weights rewound after each pruning step (lottery ticket), or
weights updated from calibration data to make up for what a step removes (sparsegpt,
bias_compensation).

The Pruner calls a mechanism from its training-loop hooks. `hooks` names the per-optimizer-step
hooks a mechanism cannot work without, so a training loop that skips them is caught
(:class:`pruner_iface.training.hook_check.HookCheck`) instead of silently training without them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..registry import Registry, check
from ..targets.base import TargetLayer


@dataclass
class TrainingContext:
    """What a mechanism may read: the model, the target's layers and the schedule."""

    model: nn.Module
    layers: list[TargetLayer]
    scheduler: Any


@dataclass
class MaskChange:
    """What one pruning step does to one layer: units pruned before and after, the members'
    element scores (empty for unit metrics) and the keep-masks that make it so."""

    layer: TargetLayer
    before: torch.Tensor
    after: torch.Tensor
    member_scores: list[torch.Tensor]
    masks: dict


@dataclass
class Mechanism(ABC):
    """Base of the training-time mechanisms; every hook is optional."""

    hooks: ClassVar[tuple[str, ...]] = ()  # Pruner hooks needed at every optimizer step
    stages_masks: ClassVar[bool] = False  # changes how a pruning step's masks are applied (see `stage`)
    requires_data: ClassVar[bool] = False  # reads calibration data in run() (see `collect`)
    state_keys: ClassVar[tuple[str, ...]] = ()  # run-time state a saved run keeps (see checkpoint.py)

    def bind(self, context: TrainingContext) -> None:
        """Check that the mechanism applies to these layers (raise ConfigError); change nothing."""
        self.context = context

    def on_train_begin(self) -> None:
        """Training starts (``on_train_begin``, or the start of ``run``)."""

    def on_step_begin(self, step: int) -> None:
        """A training step starts (before the pruner prunes at this step)."""

    def before_optimizer_step(self) -> None:
        """Gradients are ready (``on_before_optimizer_step``)."""

    def after_optimizer_step(self) -> None:
        """The optimizer has stepped (``on_after_optimizer_step``)."""

    def collect(self, model: nn.Module, data, loss_fn) -> None:
        """Read calibration data before a pruning step (only when `requires_data`)."""

    def reconstruct(self, changes: list[MaskChange]) -> list[MaskChange]:
        """Before a step's masks are applied, with the weights still whole: update the weights to
        make up for the `changes` and return them (a change's masks may be re-chosen, pruning as
        many units). The default changes nothing."""
        return changes

    def after_prune(self, step: int) -> None:
        """A pruning step has changed the masks."""

    def stage(self, step: int, changes: list[MaskChange]) -> list[dict]:
        """The masks to apply now for a pruning step's `changes` (see ``Pruner._prune_to``); the
        default applies all of them at once."""
        return [change.masks for change in changes]

    def on_train_end(self) -> None:
        """Training ended (``on_train_end``)."""

    def notes(self) -> dict:
        """Facts for the report."""
        return {}


@dataclass
class Penalty(Mechanism):
    """A penalty α·R(W) whose gradient is added to `penalised()`'s gradients before every
    optimizer step (the mask's gradient hook still applies)."""

    alpha: float = 1e-4

    hooks = ("on_before_optimizer_step",)

    def __post_init__(self) -> None:
        check(isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool) and self.alpha > 0,
              "alpha", f"must be a positive number; got {self.alpha!r}")

    @abstractmethod
    def penalty(self) -> torch.Tensor:
        """α·R(W), differentiable in the penalised tensors."""

    @abstractmethod
    def penalised(self) -> list[torch.Tensor]:
        """The parameters whose gradients receive the penalty's."""

    def before_optimizer_step(self) -> None:
        with torch.enable_grad():
            add_penalty_grad(self.penalty(), self.penalised())


def member_params(layers: list[TargetLayer]) -> list[tuple[Any, torch.Tensor]]:
    """(member, parameter) of every trainable member tensor of `layers`, each tensor once."""
    seen, out = set(), []
    for layer in layers:
        for member in layer.members():
            weight = member.weight
            if isinstance(weight, nn.Parameter) and weight.requires_grad and id(weight) not in seen:
                seen.add(id(weight))
                out.append((member, weight))
    return out


def add_penalty_grad(penalty: torch.Tensor, params: list[torch.Tensor]) -> None:
    """Add d(penalty)/d(param) to each parameter's ``.grad`` (the mask's gradient hook applies)."""
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    with torch.no_grad():
        for param, grad in zip(params, grads):
            if grad is None:
                continue
            if param.grad is None:
                param.grad = grad.detach().clone()
            else:
                param.grad.add_(grad)


MECHANISMS: Registry[Mechanism] = Registry("training mechanism", Mechanism)
register_mechanism = MECHANISMS.register
