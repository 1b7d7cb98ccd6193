"""`lamp`: layer-adaptive magnitude pruning (Lee et al., ICLR 2021), one global threshold."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import register_allocator
from .global_threshold import GlobalThreshold


def lamp_scores(scores: torch.Tensor) -> torch.Tensor:
    """score(u) = w_u² / Σ_{v ≥ u} w_v² over the layer's units sorted ascending by w² (w: the
    unit's score). Units already pruned (-inf) stay -inf."""
    out = torch.full_like(scores, float("-inf"), dtype=torch.float64)
    live = torch.isfinite(scores)
    squared = scores[live].double() ** 2
    if squared.numel():
        order = torch.argsort(squared, stable=True)
        ranked = squared[order]
        suffix = torch.flip(torch.cumsum(torch.flip(ranked, [0]), 0), [0])
        normalised = torch.where(suffix > 0, ranked / suffix, torch.ones_like(ranked))
        values = torch.empty_like(squared)
        values[order] = normalised
        out[live] = values
    return out.to(scores.dtype)


@register_allocator("lamp")
@dataclass
class Lamp(GlobalThreshold):
    """Units ranked globally by their LAMP score, which rescales each layer's scores by what
    remains above them, so that no layer is emptied while others keep weak units."""

    exact = False  # ranks rescaled scores; the amount objective's exact global pick reads raw ones

    def propose(self, layers, unit_scores, level):
        return super().propose(layers, [lamp_scores(s) for s in unit_scores], level)
