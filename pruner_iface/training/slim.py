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
from ..registry import check
from .base import Mechanism, add_penalty_grad, member_params, register_mechanism


@register_mechanism("slim")
@dataclass
class Slim(Mechanism):
    alpha: float = 1e-4

    hooks = ("on_before_optimizer_step",)

    def __post_init__(self) -> None:
        check(isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool) and self.alpha > 0,
              "alpha", f"must be a positive number; got {self.alpha!r}")

    def bind(self, context) -> None:
        super().bind(context)
        self._gammas = [param for member, param in member_params(context.layers)
                        if isinstance(member.module, _BatchNorm) and member.param_name == "weight"]
        if not self._gammas:
            raise ConfigError(
                "training.slim: penalises the BatchNorm scales of the target's channel groups, and the "
                f"selected layers ({', '.join(layer.name for layer in context.layers[:5])}) pass through no affine "
                "BatchNorm; use the 'channel' target on a model with BatchNorm after its convolutions")

    def before_optimizer_step(self) -> None:
        with torch.enable_grad():
            add_penalty_grad(self.alpha * sum(g.abs().sum() for g in self._gammas), self._gammas)
