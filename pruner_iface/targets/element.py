"""`element`: unstructured pruning; every weight is a unit.

`scope="row"` compares weights only within each output row (the weight's dim 0), every row
losing the same number, as Wanda and SparseGPT do; the layer's count is then a multiple of its
row count.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import check
from .base import TensorLayer, TensorTarget, register_target


class ElementLayer(TensorLayer):
    counts_weights = True

    def __init__(self, name: str, module: nn.Module, param_name: str = "weight"):
        super().__init__(name, module, param_name)
        self.num_units = self.weight.numel()
        self.unit_weights = 1

    def group(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.reshape(-1, 1)

    def ungroup(self, grouped: torch.Tensor) -> torch.Tensor:
        return grouped.reshape(self.weight.shape)

    def unit_scores(self, element_scores: torch.Tensor, reduce: str) -> torch.Tensor:
        return element_scores.reshape(-1)

    def masks(self, pruned, member_scores=None):
        return {(self.module, self.param_name): ~pruned.reshape(self.weight.shape)}


class RowElementLayer(ElementLayer):
    """Weights compared within each output row; every row prunes the same count."""

    free_choice = False

    def __init__(self, name: str, module: nn.Module, param_name: str = "weight"):
        super().__init__(name, module, param_name)
        self.rows = self.weight.shape[0] if self.weight.dim() > 1 else 1

    @property
    def max_units(self) -> int:
        return self.num_units - self.rows  # every row keeps one weight

    def legal_count(self, count: int) -> int:
        return min(self.max_units, (count // self.rows) * self.rows)

    def choose(self, scores: torch.Tensor, count: int) -> torch.Tensor:
        per_row = count // self.rows
        grid = scores.reshape(self.rows, -1)
        pruned = torch.zeros_like(grid, dtype=torch.bool)
        if per_row:
            pruned.scatter_(1, grid.argsort(dim=1, stable=True)[:, :per_row], True)
        return pruned.reshape(-1)


@register_target("element")
@dataclass
class Element(TensorTarget):
    """Unstructured: any single weight may go. Works on any module with a ``weight`` tensor."""

    scope: str = "layer"

    supported_types = None

    def __post_init__(self) -> None:
        check(self.scope in ("layer", "row"), "scope",
              f"must be 'layer' (compare all weights of a layer) or 'row' (within each output row); got {self.scope!r}")
        super().__post_init__()

    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        return (RowElementLayer if self.scope == "row" else ElementLayer)(name, module)
