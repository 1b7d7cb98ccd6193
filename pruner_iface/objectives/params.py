"""`params`: parameters left, as a fraction of the whole dense model's (absolute: a count)."""
from __future__ import annotations

from dataclasses import dataclass

from typing import ClassVar

from torch import nn

from ..accounting import kept_fractions, layer_removals
from ..counting import count_params
from ..masks import masked_params
from .base import Objective, register_objective


@register_objective("params")
@dataclass
class Params(Objective):
    unit: ClassVar[str] = "parameters"

    def bind_dense(self, model, example_inputs, layers):
        self.dense_params = sum(p.numel() for p in model.parameters())
        touched = {(id(r.module), r.param_name) for layer in layers for r in layer.removals(layer.current_pruned())}
        # masks outside the target's tensors (e.g. from an earlier pruner) stay counted
        self._removed_elsewhere = sum(
            mask.numel() - int(mask.sum()) for _, module, name, mask in masked_params(model)
            if (id(module), name) not in touched
        )

    def dense_absolute(self):
        return float(self.dense_params)

    def measure(self, model):
        return count_params(model) / self.dense_params

    def estimate(self, layers, pruned):
        removed = sum(
            getattr(module, name).numel() * (1.0 - kept)
            for (_, name), (module, kept) in kept_fractions(layer_removals(layers, pruned)).items()
            if isinstance(getattr(module, name, None), nn.Parameter)
        )
        return (self.dense_params - self._removed_elsewhere - removed) / self.dense_params
