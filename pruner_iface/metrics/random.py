"""`random`: uniform random scores from a seeded generator (a baseline).

u ~ U[0, 1) is drawn only for the weights (or, with `along`, the slices) not pruned yet, in
row-major order, and oriented as torch.nn.utils.prune orients it: random_unstructured removes the
highest u (scores are −u), random_structured the lowest (scores are u). With the same seed the
masks match torch's, also when pruning again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..masks import get_mask
from ..registry import check
from .base import Metric, register_metric


@register_metric("random")
@dataclass
class Random(Metric):
    """`seed` makes runs reproducible; `along=d` draws one number per slice along weight dim d
    (shared by its elements; reduce with mean or max), like torch's random_structured."""

    seed: int = 0
    along: Optional[int] = None

    state_keys = ("_generator",)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.along is None or (isinstance(self.along, int) and not isinstance(self.along, bool)), "along",
              f"must be a weight dim (integer) or null; got {self.along!r}")
        self._generator = torch.Generator().manual_seed(int(self.seed))

    def element_scores(self, layer) -> torch.Tensor:
        weight = layer.weight
        mask = get_mask(layer.module, layer.param_name)
        if self.along is None:
            if mask is None:
                return -torch.rand(weight.shape, generator=self._generator).to(weight.device)
            scores = torch.full(weight.shape, float("inf"))
            scores[mask.cpu()] = torch.rand(int(mask.sum()), generator=self._generator)
            return -scores.to(weight.device)
        dim = self.along % weight.dim() if -weight.dim() <= self.along < weight.dim() else None
        check(dim is not None, "along", f"{self.along} is not a dim of {layer.name!r}'s weight {tuple(weight.shape)}")
        n = weight.shape[dim]
        alive = torch.ones(n, dtype=torch.bool) if mask is None else mask.cpu().movedim(dim, 0).reshape(n, -1).any(1)
        per_slice = torch.full((n,), float("-inf"))
        per_slice[alive] = torch.rand(int(alive.sum()), generator=self._generator)
        shape = [1] * weight.dim()
        shape[dim] = n
        return per_slice.reshape(shape).expand(weight.shape).to(weight.device)
