"""`sensitivity`: per-layer ratios from how much evaluate() drops when each layer alone is pruned
(the sensitivity analysis of Han et al. 2015 and Li et al. 2017, "Pruning Filters for Efficient
ConvNets"; NNI's SensitivityAnalysis).

Before a step, each layer is pruned alone (its lowest-scoring units, on a masked copy) at every
ratio of `ratios` and the drop of evaluate() is recorded. Strength `level` allows a drop of
``level × the largest drop seen``: every layer takes the largest ratio whose (monotone,
interpolated) drop stays within it, so insensitive layers are pruned first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..registry import check
from .base import Allocator, Proposal, register_allocator, units_for


@register_allocator("sensitivity")
@dataclass
class Sensitivity(Allocator):
    ratios: list = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.75, 0.9])

    needs_evaluate = True

    def __post_init__(self) -> None:
        super().__post_init__()
        ok = isinstance(self.ratios, (list, tuple)) and len(self.ratios) > 0 and all(
            isinstance(r, (int, float)) and 0.0 < r < 1.0 for r in self.ratios)
        check(ok, "ratios", f"must be a non-empty list of ratios in (0, 1); got {self.ratios!r}")
        self.ratios = sorted(float(r) for r in self.ratios)
        self.drops: dict[str, list[float]] = {}  # layer name -> evaluate() drop at each ratio (last step)

    def prepare(self, context):
        current = [s == float("-inf") for s in context.unit_scores]
        base = context.evaluate(current)
        self.drops = {}
        curves = []
        for i, layer in enumerate(context.layers):
            drops = []
            for ratio in self.ratios:
                count = layer.legal_count(min(max(units_for(ratio, layer.num_units), context.already[i]),
                                              layer.max_units))
                trial = list(current)
                trial[i] = layer.choose(context.unit_scores[i], count)
                drops.append(base - context.evaluate(trial))
            self.drops[layer.name] = drops
            curves.append(np.maximum.accumulate(np.array(drops, dtype=np.float64)))
        largest = max(float(c.max()) for c in curves)
        span = largest if largest > 0 else 1.0
        # strictly increasing curves (a tiny slope) so that flat ones still invert to every ratio
        grid = np.array([0.0] + self.ratios)
        self._curves = [np.concatenate([[0.0], np.maximum(c, 0.0)]) + 1e-6 * span * grid for c in curves]
        self._grid = grid
        self._span = max(float(c[-1]) for c in self._curves)

    def propose(self, layers, unit_scores, level):
        allowed = level * self._span
        ratios = [float(np.interp(allowed, curve, self._grid)) for curve in self._curves]
        return Proposal(self.counts_from_ratios(layers, ratios))
