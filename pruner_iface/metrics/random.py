"""`random`: uniform random scores from a seeded generator (a baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Metric, register_metric


@register_metric("random")
@dataclass
class Random(Metric):
    """Uniform scores in [0, 1); `seed` makes runs reproducible."""

    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._generator = torch.Generator().manual_seed(int(self.seed))

    def element_scores(self, layer) -> torch.Tensor:
        scores = torch.rand(layer.weight.shape, generator=self._generator)
        return scores.to(layer.weight.device)
