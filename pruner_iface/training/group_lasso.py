"""`group_lasso`: the penalty α·Σ_g ‖W_g‖₂ over the target's units (Yuan & Lin, 2006; Wen et al.,
"Learning Structured Sparsity in Deep Neural Networks", NeurIPS 2016; Intel Neural Compressor
v1's rule). Its gradient α·W_g/‖W_g‖₂ is added to the weights' gradients in
``on_before_optimizer_step``, so whole units (blocks, rows, coupled channel groups with their
BatchNorm and consumer slices) shrink together and the metric then finds them small.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Penalty, member_params, register_mechanism

EPS = 1e-12  # keeps the gradient finite at an all-zero (pruned) unit, where it is then zero


@register_mechanism("group_lasso")
@dataclass
class GroupLasso(Penalty):

    def penalty(self) -> torch.Tensor:
        total = torch.zeros(())
        for layer in self.context.layers:
            squares = [member.weight.float().pow(2) for member in layer.members()]
            total = total + (layer.unit_sums(squares) + EPS).sqrt().sum()
        return self.alpha * total

    def penalised(self) -> list[torch.Tensor]:
        return [param for _, param in member_params(self.context.layers)]
