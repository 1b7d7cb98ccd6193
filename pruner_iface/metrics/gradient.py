"""Gradient metrics: `gradient` |g|, `taylor` |w·g| (first-order Taylor), `snip` |w·g| on the first batch.

Scores are averaged over the observed batches (or optimizer steps, in the training-loop hooks).
SNIP: Lee et al., "SNIP: Single-shot network pruning based on connection sensitivity", ICLR 2019.
Taylor: Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR 2019.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import InputError
from ..registry import check
from .base import DataMetric, register_metric, run_backward_passes, weight_grad


@dataclass
class GradientStatistic(DataMetric):
    """Mean over batches of a per-element statistic of (weight, gradient)."""

    state_keys = ("_sums", "_count")

    def statistic(self, weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return (weight * grad).abs()

    def reset(self) -> None:
        self._sums: dict[int, torch.Tensor] = {}
        self._count = 0

    def observe(self, layers) -> None:
        if self.batches is not None and self._count >= self.batches:
            return
        for layer in layers:
            stat = self.statistic(layer.weight.detach(), weight_grad(layer, self.registered_name)).float()
            key = id(layer)
            self._sums[key] = stat if key not in self._sums else self._sums[key].add_(stat)
        self._count += 1

    def collect(self, model, layers, data, loss_fn) -> None:
        run_backward_passes(model, layers, data, loss_fn, self.batches, lambda: self.observe(layers),
                            self.registered_name)

    def element_scores(self, layer) -> torch.Tensor:
        if self._count == 0 or id(layer) not in self._sums:
            raise InputError(
                f"metric {self.registered_name!r} has seen no gradient yet: pass data and loss_fn to run(), "
                f"or call on_before_optimizer_step() after each backward in your training loop"
            )
        return self._sums[id(layer)] / self._count


@register_metric("gradient")
@dataclass
class Gradient(GradientStatistic):
    """|g| averaged over batches."""

    def statistic(self, weight, grad):
        return grad.abs()


@register_metric("taylor")
@dataclass
class Taylor(GradientStatistic):
    """|w·g|^power averaged over batches: the first-order Taylor estimate of the loss change;
    power=2 is NNI's TaylorFO ((w·g)² accumulated per unit)."""

    power: int = 1
    additive = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.power in (1, 2), "power", f"must be 1 (|w·g|) or 2 ((w·g)²); got {self.power!r}")

    def statistic(self, weight, grad):
        return (weight * grad).abs().pow(self.power)


@register_metric("snip")
@dataclass
class Snip(GradientStatistic):
    """|w·g| on the first `batches` batches (default 1), as in SNIP."""

    batches: Optional[int] = 1
    additive = True


@register_metric("snip_momentum")
@dataclass
class SnipMomentum(GradientStatistic):
    """S ← momentum·S + |W⊙G| at every observation (Intel Neural Compressor's snip_momentum).

    The score persists across pruning steps; in the training-loop hooks it is updated at every
    ``on_before_optimizer_step``.
    """

    momentum: float = 0.9
    additive = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.momentum < 1.0, "momentum", f"must be in [0, 1); got {self.momentum}")

    def observe(self, layers) -> None:
        for layer in layers:
            stat = (layer.weight.detach() * weight_grad(layer, self.registered_name)).abs().float()
            key = id(layer)
            self._sums[key] = stat if key not in self._sums else self._sums[key].mul_(self.momentum).add_(stat)
        self._count += 1

    def after_prune(self) -> None:
        """Momentum scores carry over between pruning steps."""

    def element_scores(self, layer) -> torch.Tensor:
        if self._count == 0 or id(layer) not in self._sums:
            return super().element_scores(layer)
        return self._sums[id(layer)]
