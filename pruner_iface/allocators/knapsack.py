"""`knapsack`: keep the most importance under a cost budget (HALP, Shen et al., NeurIPS 2022).

Each layer chooses how many more units to prune; a choice costs the importance of the units it
removes (its lowest-scoring ones) and saves what the objective's cost model says
(``objective.savings``: a staircase for `latency-table`, linear for FLOPs and params). Dynamic
programming over integer-scaled savings finds the choices that lose the least importance while
saving at least `level` of the most that can be saved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..registry import check
from .base import Allocator, Proposal, register_allocator


@register_allocator("knapsack")
@dataclass
class Knapsack(Allocator):
    bins: int = 2000        # resolution of the savings scale
    max_choices: int = 256  # unit counts considered per layer (evenly spaced legal counts)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.bins, int) and self.bins >= 10, "bins", f"must be an integer >= 10; got {self.bins!r}")
        check(isinstance(self.max_choices, int) and self.max_choices >= 2, "max_choices",
              f"must be an integer >= 2; got {self.max_choices!r}")
        self._savings = None

    def prepare(self, context):
        self._savings = context.objective.savings(context.layers)

    def _choices(self, layer, lo: int, hi: int) -> np.ndarray:
        counts = sorted({layer.legal_count(c) for c in range(lo, hi + 1)} | {lo})
        counts = [c for c in counts if lo <= c <= hi] or [lo]
        if len(counts) > self.max_choices:
            picks = np.unique(np.linspace(0, len(counts) - 1, self.max_choices).round().astype(int))
            counts = [counts[i] for i in picks]
        return np.array(counts, dtype=np.int64)

    def propose(self, layers, unit_scores, level):
        if self._savings is None:
            raise RuntimeError("knapsack.prepare() must run before propose() (the Pruner does this)")
        already = [int(torch.isinf(s).logical_and(s < 0).sum()) for s in unit_scores]
        lows, highs = self.bounds(layers, already)
        options = []
        for layer, scores, done, lo, hi, saving in zip(layers, unit_scores, already, lows, highs, self._savings):
            counts = self._choices(layer, lo, hi)
            free = np.sort(scores[torch.isfinite(scores)].double().numpy())
            lost = np.concatenate([[0.0], np.cumsum(free)])
            extra = np.clip(counts - done, 0, len(free))
            options.append((counts, lost[extra], saving[np.clip(extra, 0, len(saving) - 1)]))
        most = sum(float(s.max()) for _, _, s in options)
        need = level * most
        if need <= 0:
            return Proposal([int(c[0]) for c, _, _ in options])
        # floor: the scaled savings never overstate the true ones; capped (the top bin means "enough")
        # and at zero: a count the table says is slower (a staircase step) saves nothing here; the
        # search measures the result with the objective itself, so nothing is overstated in the end
        scaled = [np.floor(np.clip(s / need, 0.0, 1.0) * self.bins).astype(np.int64) for _, _, s in options]
        picks = _min_loss(self.bins, [l for _, l, _ in options], scaled)
        if picks is None:  # even everything allowed does not save enough: prune all that is allowed
            return Proposal([int(c[-1]) for c, _, _ in options])
        return Proposal([int(c[i]) for (c, _, _), i in zip(options, picks)])


def _min_loss(bins: int, losses: list[np.ndarray], savings: list[np.ndarray]) -> list[int] | None:
    """Index of one choice per layer minimising the summed loss with summed savings >= bins
    (savings capped at bins), or None if no combination reaches it."""
    inf = float("inf")
    best = np.full(bins + 1, inf)
    best[0] = 0.0
    positions = np.arange(bins + 1)
    back = []  # per layer: (choice, previous bin) for every bin
    for loss, save in zip(losses, savings):
        new = np.full(bins + 1, inf)
        choice = np.zeros(bins + 1, dtype=np.int64)
        prev = np.zeros(bins + 1, dtype=np.int64)
        for i, (cost, gain) in enumerate(zip(loss, np.minimum(save, bins))):
            candidate = np.full(bins + 1, inf)
            source = positions - gain
            candidate[gain:] = best[: bins + 1 - gain] + cost
            if gain > 0:  # any bin within `gain` of the top reaches the (capped) top bin
                top = bins + 1 - gain + int(np.argmin(best[bins + 1 - gain:]))
                if best[top] + cost < candidate[bins]:
                    candidate[bins], source = best[top] + cost, source.copy()
                    source[bins] = top
            better = candidate < new
            new[better] = candidate[better]
            choice[better] = i
            prev[better] = source[better]
        back.append((choice, prev))
        best = new
    if not np.isfinite(best[bins]):
        return None
    picks, b = [], bins
    for choice, prev in reversed(back):
        picks.append(int(choice[b]))
        b = int(prev[b])
    return picks[::-1]
