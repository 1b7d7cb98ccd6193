"""Allocator: how many units to prune in each layer, as a function of one strength `level` in [0, 1].

The pruning loop searches `level` until the step objective is met; an allocator only maps
(level, unit scores) to per-layer unit counts. Bounds shared by every allocator: `min_ratio`,
`max_ratio`, per-layer `overrides` ({regex: ratio} fixes a layer's ratio; {regex: {"min_ratio":
.., "max_ratio": ..}} bounds it), units already pruned stay pruned, and no layer loses every unit.
"""
from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import torch

from ..errors import ConfigError
from ..registry import Registry, check
from ..selection_ops import lowest_k
from ..targets.base import TargetLayer


def units_for(ratio: float, units: int) -> int:
    """Units to prune for a ratio, rounded up so that the ratio is always met (within one unit)."""
    return min(units, max(0, math.ceil(ratio * units - 1e-9)))


@dataclass
class Proposal:
    """Per-layer unit counts, and the pruned sets where the allocator already selected them."""

    counts: list[int]
    sets: list[torch.Tensor | None] | None = None

    def pruned_sets(self, unit_scores: list[torch.Tensor]) -> list[torch.Tensor]:
        """Bool tensors marking the `counts[i]` lowest-scoring units of each layer."""
        known = self.sets or [None] * len(self.counts)
        return [lowest_k(s, k) if chosen is None else chosen for s, k, chosen in zip(unit_scores, self.counts, known)]


@dataclass
class AllocationContext:
    """What an allocator may look at before a step's search (see :meth:`Allocator.prepare`):
    the step's layers, unit scores, objective and target value, the units already pruned per
    layer, and `evaluate(pruned sets)`: the user's evaluate() on a masked copy of the model
    (None when no evaluate was given; the model itself is never touched)."""

    layers: list[TargetLayer]
    unit_scores: list[torch.Tensor]
    objective: Any
    target: float
    already: list[int]
    evaluate: Optional[Callable[[list[torch.Tensor]], float]] = None


@dataclass
class Allocator(ABC):
    min_ratio: float = 0.0
    max_ratio: float = 1.0
    overrides: dict = field(default_factory=dict)

    needs_evaluate: ClassVar[bool] = False  # prepare() calls context.evaluate (run(evaluate=...) is required)
    exact: ClassVar[bool] = False  # has allocate_exact(layers, unit_scores, objective): meets the `amount` objective

    def __post_init__(self) -> None:
        check(0.0 <= self.min_ratio < 1.0, "min_ratio", f"must be in [0, 1); got {self.min_ratio}")
        check(0.0 < self.max_ratio <= 1.0, "max_ratio", f"must be in (0, 1]; got {self.max_ratio}")
        check(self.min_ratio <= self.max_ratio, "min_ratio", f"{self.min_ratio} exceeds max_ratio {self.max_ratio}")
        check(isinstance(self.overrides, dict), "overrides", "must map module-name regexes to a ratio or a dict")
        self._rules = []
        for pattern, rule in self.overrides.items():
            key = f"overrides.{pattern}"
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{key}: not a valid regular expression ({exc})") from None
            if isinstance(rule, (int, float)) and not isinstance(rule, bool):
                check(0.0 <= rule < 1.0, key, f"a fixed ratio must be in [0, 1); got {rule}")
                self._rules.append((regex, float(rule), float(rule)))
            elif isinstance(rule, dict):
                bad = set(rule) - {"min_ratio", "max_ratio"}
                check(not bad, key, f"unknown key(s) {sorted(bad)}; allowed: min_ratio, max_ratio")
                lo, hi = rule.get("min_ratio", self.min_ratio), rule.get("max_ratio", self.max_ratio)
                check(0.0 <= lo < 1.0 and 0.0 < hi <= 1.0 and lo <= hi, key,
                      f"needs 0 <= min_ratio <= max_ratio <= 1, min_ratio < 1; got {lo}, {hi}")
                self._rules.append((regex, float(lo), float(hi)))
            else:
                raise ConfigError(f"{key}: must be a ratio or a dict with min_ratio/max_ratio; got {rule!r}")

    def ratio_bounds(self, layer: TargetLayer) -> tuple[float, float, bool]:
        """(min ratio, max ratio, fixed?) for one layer after overrides (the last match wins)."""
        lo, hi, fixed = self.min_ratio, self.max_ratio, False
        for regex, rlo, rhi in self._rules:
            if regex.fullmatch(layer.name):
                lo, hi, fixed = rlo, rhi, rlo == rhi
        return lo, hi, fixed

    def bounds(self, layers: list[TargetLayer], already: list[int]) -> tuple[list[int], list[int]]:
        """Per-layer (lowest, highest) unit counts allowed."""
        lows, highs = [], []
        for layer, done in zip(layers, already):
            lo, hi, fixed = self.ratio_bounds(layer)
            cap = layer.max_units
            if fixed:
                n_lo = n_hi = min(units_for(lo, layer.num_units), cap)
            else:
                n_lo = min(math.ceil(lo * layer.num_units - 1e-9), cap)
                n_hi = min(math.floor(hi * layer.num_units + 1e-9), cap)
            n_lo = max(n_lo, done)
            lows.append(n_lo)
            highs.append(max(n_hi, n_lo))
        return lows, highs

    def prepare(self, context: AllocationContext) -> None:
        """Called once per step before the search: allocators that learn from the step (costs,
        sensitivities, a search over allocations) do it here. Most need nothing."""

    def counts_from_ratios(self, layers: list[TargetLayer], ratios) -> list[int]:
        """Unit counts for per-layer ratios (rounded up, like every allocator)."""
        return [units_for(float(r), layer.num_units) for layer, r in zip(layers, ratios)]

    @abstractmethod
    def propose(self, layers: list[TargetLayer], unit_scores: list[torch.Tensor], level: float) -> Proposal:
        """Unbounded per-layer counts for strength `level` in [0, 1] (monotone in `level`)."""

    def allocate(self, layers, unit_scores, level: float, already: list[int]) -> Proposal:
        """:meth:`propose` clamped to the bounds."""
        proposal = self.propose(layers, unit_scores, level)
        lows, highs = self.bounds(layers, already)
        counts = [layer.legal_count(min(max(c, lo), hi)) for layer, c, lo, hi in zip(layers, proposal.counts, lows, highs)]
        known = proposal.sets or [None] * len(counts)
        sets = [chosen if c == raw and chosen is not None and layer.free_choice else layer.choose(scores, c)
                for layer, scores, c, raw, chosen in zip(layers, unit_scores, counts, proposal.counts, known)]
        return Proposal(counts, sets)


ALLOCATORS: Registry[Allocator] = Registry("allocator", Allocator)
register_allocator = ALLOCATORS.register
