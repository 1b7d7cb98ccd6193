"""`slim`: sparse training of BatchNorm scales (Network Slimming, Liu et al., ICCV 2017): the
penalty α·Σ|γ| over the BatchNorms of the target's channel groups, whose gradient α·sign(γ) is
added in ``on_before_optimizer_step``. NNI's Slim pruner uses α = 1e-4; prune afterwards with
the `bn_scale` metric.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError
from .base import Penalty, member_params, register_mechanism


@register_mechanism("slim")
@dataclass
class Slim(Penalty):

    def bind(self, context) -> None:
        super().bind(context)
        self._gammas = [param for member, param in member_params(context.layers)
                        if isinstance(member.module, _BatchNorm) and member.param_name == "weight"]
        if not self._gammas:
            raise ConfigError(
                "training.slim: penalises the BatchNorm scales of the target's channel groups, and the "
                f"selected layers ({', '.join(layer.name for layer in context.layers[:5])}) pass through no affine "
                "BatchNorm; use the 'channel' target on a model with BatchNorm after its convolutions")

    def penalty(self) -> torch.Tensor:
        return self.alpha * sum(gamma.abs().sum() for gamma in self._gammas)

    def penalised(self) -> list[torch.Tensor]:
        return self._gammas
