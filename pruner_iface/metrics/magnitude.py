"""Magnitude metrics: `l1` scores |w|, `l2` scores w² (a unit's sum is its squared L2 norm)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

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
