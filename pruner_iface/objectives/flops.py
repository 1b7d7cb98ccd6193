"""`flops`: FLOPs of one forward on the example inputs, as a fraction of the dense model's
(absolute: GFLOPs, one multiply-add counted as one FLOP like fvcore).

A module's FLOPs shrink with the fraction of its weight kept: exact for removed rows and
columns, the usual "sparse FLOPs" convention for unstructured masks. Counts come from fvcore.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..accounting import kept_fractions, layer_removals
from ..counting import count_flops, module_flops
from ..errors import InputError
from .base import Objective, register_objective


@register_objective("flops")
@dataclass
class Flops(Objective):
    unit: ClassVar[str] = "GFLOPs"

    def bind_dense(self, model, example_inputs, layers):
        per_module = module_flops(model, example_inputs)
        self.dense_flops = per_module.get("", 0)
        if self.dense_flops <= 0:
            raise InputError("fvcore counted no FLOPs for the model on example_inputs; use a params or sparsity objective")
        names = {id(m): n for n, m in model.named_modules()}
        self._flops_of = {mid: per_module.get(name, 0) for mid, name in names.items()}
        self._inputs = example_inputs

    def dense_absolute(self):
        return self.dense_flops / 1e9

    def measure(self, model):
        return count_flops(model, self._inputs) / self.dense_flops

    def estimate(self, layers, pruned):
        removed = sum(
            self._flops_of.get(mid, 0) * (1.0 - kept)
            for (mid, name), (_, kept) in kept_fractions(layer_removals(layers, pruned)).items()
            if name == "weight"
        )
        return (self.dense_flops - removed) / self.dense_flops
