"""`channel-local`: output rows of one layer (Linear rows, ConvNd filters), with their bias entry.

No coupling is followed: consumers still see the (zero) channel. The graph-aware `channel`
target, which also removes coupled consumer slices, builds on the dependency graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..accounting import Removal
from .base import TensorLayer, TensorTarget, register_target


class RowLayer(TensorLayer):
    structured = True

    def __init__(self, name: str, module: nn.Module, param_name: str = "weight"):
        super().__init__(name, module, param_name)
        w = self.weight
        self.num_units = w.shape[0]
        self.unit_weights = int(w[0].numel())
        bias = getattr(module, "bias", None)
        self.has_bias = isinstance(bias, torch.Tensor) and bias.shape == (self.num_units,)

    def group(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(self.num_units, -1)

    def ungroup(self, grouped: torch.Tensor) -> torch.Tensor:
        return grouped.reshape(self.weight.shape)

    def removals(self, pruned):
        n = int(torch.count_nonzero(pruned))
        out = [Removal(self.module, self.param_name, 0, n, self.num_units)]
        if self.has_bias:
            out.append(Removal(self.module, "bias", 0, n, self.num_units))
        return out

    def masks(self, pruned, member_scores=None):
        keep_rows = ~pruned
        shape = (self.num_units,) + (1,) * (self.weight.dim() - 1)
        out = {(self.module, self.param_name): keep_rows.reshape(shape).expand(self.weight.shape)}
        if self.has_bias:
            out[(self.module, "bias")] = keep_rows.clone()
        return out


@register_target("channel-local")
@dataclass
class ChannelLocal(TensorTarget):
    """Output rows of Linear / ConvNd layers, one layer at a time (units: rows)."""

    structured = True

    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        return RowLayer(name, module)

    def speed_up(self, model, layers):
        from ..speedup.rows import speed_up_rows

        return speed_up_rows(model, layers)
