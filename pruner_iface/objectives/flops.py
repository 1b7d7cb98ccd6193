"""`flops`: FLOPs of one forward on the example inputs, as a fraction of the dense model's.

A layer's FLOPs shrink with the fraction of its weights removed (exact for removed rows,
the usual "sparse FLOPs" convention for unstructured masks). Counts come from fvcore.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..counting import module_flops
from .base import Objective, register_objective


@register_objective("flops")
@dataclass
class Flops(Objective):
    def bind(self, model, example_inputs, layers):
        per_module = module_flops(model, example_inputs)
        self.dense_flops = per_module.get("", 0)
        if self.dense_flops <= 0:
            from ..errors import InputError

            raise InputError("fvcore counted no FLOPs for the model on example_inputs; use a params or sparsity objective")
        self._layer_flops = [per_module.get(layer.name, 0) for layer in layers]

    def measure(self, layers, pruned):
        removed = 0.0
        for layer, flops, p in zip(layers, self._layer_flops, pruned):
            removed += flops * layer.removed_weights(p) / layer.weight.numel()
        return (self.dense_flops - removed) / self.dense_flops
