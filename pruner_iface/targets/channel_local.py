"""`channel-local`: output rows of one layer (Linear rows, ConvNd filters), with their bias entry;
with `dim=1`, input columns instead (torch.nn.utils.prune's ln_structured along dim 1), which
mask but do not shrink (only the graph-aware `channel` target removes a consumer's columns).

No coupling is followed: consumers still see the (zero) channel. The graph-aware `channel`
target, which also removes coupled consumer slices, builds on the dependency graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..accounting import Removal
from ..registry import check
from .base import TensorLayer, TensorTarget, register_target


class RowLayer(TensorLayer):
    structured = True

    def __init__(self, name: str, module: nn.Module, param_name: str = "weight", dim: int = 0):
        super().__init__(name, module, param_name)
        w = self.weight
        self.dim = dim
        self.num_units = w.shape[dim]
        self.unit_weights = int(w.numel() // self.num_units)
        bias = getattr(module, "bias", None)
        self.has_bias = dim == 0 and isinstance(bias, torch.Tensor) and bias.shape == (self.num_units,)

    def group(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.movedim(self.dim, 0).reshape(self.num_units, -1)

    def ungroup(self, grouped: torch.Tensor) -> torch.Tensor:
        moved = list(self.weight.shape)
        moved.insert(0, moved.pop(self.dim))
        return grouped.reshape(moved).movedim(0, self.dim)

    def removals(self, pruned):
        n = int(torch.count_nonzero(pruned))
        out = [Removal(self.module, self.param_name, self.dim, n, self.num_units)]
        if self.has_bias:
            out.append(Removal(self.module, "bias", 0, n, self.num_units))
        return out

    def masks(self, pruned, member_scores=None):
        keep_rows = ~pruned
        shape = [1] * self.weight.dim()
        shape[self.dim] = self.num_units
        out = {(self.module, self.param_name): keep_rows.reshape(shape).expand(self.weight.shape)}
        if self.has_bias:
            out[(self.module, "bias")] = keep_rows.clone()
        return out


@register_target("channel-local")
@dataclass
class ChannelLocal(TensorTarget):
    """Output rows of Linear / ConvNd layers, one layer at a time (units: rows; `dim=1`: input
    columns, masked only)."""

    dim: int = 0

    structured = True

    def __post_init__(self) -> None:
        check(self.dim in (0, 1), "dim", f"must be 0 (output rows) or 1 (input columns); got {self.dim!r}")
        super().__post_init__()
        self.structured = self.dim == 0  # input columns of one layer alone cannot be removed physically

    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        return RowLayer(name, module, dim=self.dim)

    def speed_up(self, model, layers):
        if self.dim != 0:
            return super().speed_up(model, layers)  # refuses: columns need the graph-aware channel target
        from ..speedup.rows import speed_up_rows

        return speed_up_rows(model, layers)
