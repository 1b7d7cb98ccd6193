"""Magnitude metrics: `l1` scores |w|, `l2` scores w² (a unit's sum is its squared L2 norm), `lp`
scores |w|^p (a unit's sum is its p-norm to the power p: the same ranking as the norm)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..registry import check
from .base import Metric, register_metric


@register_metric("l1")
@dataclass
class L1(Metric):
    """|w|; with reduce='sum' a unit's score is its L1 norm."""

    def element_scores(self, layer) -> torch.Tensor:
        return layer.weight.detach().abs()


@register_metric("l2")
@dataclass
class L2(Metric):
    """w²; with reduce='sum' a unit's score is its squared L2 norm (same ranking as the norm)."""

    def element_scores(self, layer) -> torch.Tensor:
        return layer.weight.detach().square()


@register_metric("lp")
@dataclass
class LP(Metric):
    """|w|^p for a positive finite p ('fro' is 2); torch.nn.utils.prune.ln_structured's norm."""

    p: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.p == "fro":
            self.p = 2.0
        check(isinstance(self.p, (int, float)) and not isinstance(self.p, bool) and 0 < self.p < float("inf"), "p",
              f"must be a positive finite number or 'fro'; got {self.p!r} (for the max norm use metric l1 with "
              f"reduce 'max')")

    def element_scores(self, layer) -> torch.Tensor:
        return layer.weight.detach().abs().pow(self.p)
