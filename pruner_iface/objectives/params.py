"""`params`: parameters left, as a fraction of the whole dense model's."""
from __future__ import annotations

from dataclasses import dataclass

from ..counting import count_params
from .base import Objective, register_objective


@register_objective("params")
@dataclass
class Params(Objective):
    def bind(self, model, example_inputs, layers):
        self.dense_params = sum(p.numel() for p in model.parameters())
        # masks outside the target's layers (e.g. from an earlier pruner) stay counted
        self._base = count_params(model) + sum(layer.removed_params(layer.current_pruned()) for layer in layers)

    def measure(self, layers, pruned):
        removed = sum(layer.removed_params(p) for layer, p in zip(layers, pruned))
        return (self._base - removed) / self.dense_params
