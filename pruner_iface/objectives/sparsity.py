"""`sparsity`: the fraction of the target's units removed, over all selected layers."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Objective, register_objective


@register_objective("sparsity")
@dataclass
class Sparsity(Objective):
    removes = True

    def estimate(self, layers, pruned):
        total = sum(layer.sparsity_total for layer in layers)
        removed = sum(layer.sparsity_removed(p) for layer, p in zip(layers, pruned))
        return removed / total
