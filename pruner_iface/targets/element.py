"""`element`: unstructured pruning; every weight is a unit."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

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


@register_target("element")
@dataclass
class Element(TensorTarget):
    """Unstructured: any single weight may go. Works on any module with a ``weight`` tensor."""

    supported_types = None

    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        return ElementLayer(name, module)
