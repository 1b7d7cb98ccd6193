"""`fpgm`: filter pruning via the geometric median (He et al., CVPR 2019).

A filter (a row along the weight's output dim) scores the sum of its L2 distances to the other
filters of the same tensor; the filters nearest the geometric median are the most replaceable
and score lowest. Each element carries its row's score divided by the row size, so a row unit
reduced with `sum` scores exactly that distance sum (and the consumer columns of a coupled
channel group add the same amount to every unit, leaving the ranking to the producers)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Metric, register_metric


@register_metric("fpgm")
@dataclass
class FPGM(Metric):

    def element_scores(self, layer) -> torch.Tensor:
        weight = layer.weight.detach().float()
        rows = weight.reshape(weight.shape[0], -1)
        if rows.shape[0] < 2:
            return torch.zeros_like(weight)
        distance = torch.cdist(rows.unsqueeze(0), rows.unsqueeze(0)).squeeze(0).sum(1)
        per_element = distance / rows.shape[1]
        return per_element.reshape(-1, *[1] * (weight.dim() - 1)).expand_as(weight).clone()
