"""`bn_scale`: |γ| of the BatchNorm that normalises a unit's channels (Network Slimming, Liu et
al., ICCV 2017; usually after sparse training with an L1 penalty on γ, see the `slim` mechanism).

Reads the BatchNorm weights among the members of each coupled channel group, so it needs a
graph-aware target; a group normalised by several BatchNorms (a residual stream) sums them."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import InputError
from .base import UnitMetric, register_metric


@register_metric("bn_scale")
@dataclass
class BNScale(UnitMetric):

    def unit_scores(self, layer) -> torch.Tensor:
        groups = getattr(layer, "groups", None)
        if groups is None:
            raise InputError(f"metric 'bn_scale' reads the BatchNorm of coupled channel groups: use the 'channel' "
                             f"target; layer {layer.name!r} has none")
        gammas = {id(ref.weight) for ref in layer.members()
                  if isinstance(ref.module, _BatchNorm) and ref.param_name == "weight"}
        if not gammas:
            raise InputError(f"metric 'bn_scale': the channels of {layer.name!r} pass through no affine BatchNorm; "
                             f"exclude its producers (include/exclude) or use another metric")
        return torch.stack([
            sum((ref.weight.detach()[idx].abs().sum() for ref, _, idx, _ in unit if id(ref.weight) in gammas),
                torch.zeros(())) for unit in layer.slices_per_unit()]).float()
