"""`annealing`: simulated annealing over per-layer ratios (NNI's SimulatedAnnealingPruner;
AutoCompress, Liu et al., AAAI 2020).

A candidate is a vector of per-layer ratios, sorted so that larger layers are at least as sparse
as smaller ones. Every candidate is rescaled to the step's budget by the objective itself (a hard
constraint, found by the same search as any step), evaluated on a masked copy with evaluate(),
and accepted if better, or if worse with probability exp(−ΔE/T) (ΔE in evaluate()'s units).
Each iteration perturbs every ratio by up to ±magnitude·T/T0, then cools T by `cool_down_rate`
(NNI cools only on acceptance); a `seed` makes the search reproducible. The best candidate seen
gives the shape that strength `level` scales.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ObjectiveNotReachedError
from ..registry import check
from .base import Allocator, Proposal, register_allocator
from .erk import layer_weight_shape


@dataclass
class _Scaled(Allocator):
    """Ratios in the proportions of `shape` up to half strength (the largest ratio reaching 1),
    then every ratio rising linearly to 1 at full strength, so any budget stays reachable."""

    shape: np.ndarray = field(default_factory=lambda: np.zeros(0))
    registered_name = "annealing"

    def propose(self, layers, unit_scores, level):
        top = float(self.shape.max()) if self.shape.size and self.shape.max() > 0 else 1.0
        relative = self.shape / top
        if level <= 0.5:
            ratios = 2 * level * relative
        else:
            ratios = relative + (2 * level - 1) * (1 - relative)
        return Proposal(self.counts_from_ratios(layers, np.clip(ratios, 0.0, 1.0)))


@register_allocator("annealing")
@dataclass
class Annealing(Allocator):
    start_temperature: float = 100.0
    stop_temperature: float = 20.0
    cool_down_rate: float = 0.9
    perturbation_magnitude: float = 0.35
    seed: int = 0

    needs_evaluate = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.start_temperature > self.stop_temperature > 0, "stop_temperature",
              f"needs start_temperature > stop_temperature > 0; got {self.start_temperature}, {self.stop_temperature}")
        check(0.0 < self.cool_down_rate < 1.0, "cool_down_rate", f"must be in (0, 1); got {self.cool_down_rate}")
        check(0.0 < self.perturbation_magnitude <= 1.0, "perturbation_magnitude",
              f"must be in (0, 1]; got {self.perturbation_magnitude}")
        check(isinstance(self.seed, int), "seed", f"must be an integer; got {self.seed!r}")
        self._shape = None
        self.history: list[dict] = []  # every candidate of the last step: ratios, value, score, accepted

    def _fit(self, context, shape):
        """The candidate's pruned sets at the budget (None if the budget is out of its reach)."""
        from ..loop import search

        scaled = _Scaled(self.min_ratio, self.max_ratio, dict(self.overrides), shape=shape)
        try:
            return search(context.layers, context.unit_scores, scaled, context.objective, context.target)
        except ObjectiveNotReachedError:
            return None

    def prepare(self, context):
        rng = np.random.default_rng(self.seed)
        sizes = np.array([math.prod(layer_weight_shape(layer)) for layer in context.layers], dtype=np.float64)
        order = np.argsort(sizes, kind="stable")

        def arrange(raw: np.ndarray) -> np.ndarray:  # larger layers get the larger ratios
            shape = np.empty_like(raw)
            shape[order] = np.sort(raw)
            return shape

        self.history = []
        current = best = None
        temperature = self.start_temperature
        shape = arrange(rng.uniform(0.0, 1.0, len(sizes)))
        while True:
            fitted = self._fit(context, shape)
            entry = {"ratios": shape.round(4).tolist(), "value": None, "score": None, "accepted": False}
            if fitted is not None:
                score = float(context.evaluate(fitted.pruned))
                entry.update(value=fitted.value, score=score)
                worse = current is not None and score < current[1]
                accept = current is None or not worse or rng.random() < math.exp(-(current[1] - score) / temperature)
                if accept:
                    current = (shape, score)
                    entry["accepted"] = True
                if best is None or score > best[1]:
                    best = (shape, score)
            self.history.append(entry)
            temperature *= self.cool_down_rate  # every iteration (NNI cools only on acceptance)
            if temperature <= self.stop_temperature:
                break
            magnitude = self.perturbation_magnitude * temperature / self.start_temperature
            anchor = current[0] if current is not None else shape
            shape = arrange(np.clip(anchor + rng.uniform(-magnitude, magnitude, len(sizes)), 0.0, 1.0))
        if best is None:
            raise ObjectiveNotReachedError(
                f"annealing: no candidate met the {context.objective.registered_name} target {context.target:.4g}; "
                f"the model was left as it was before this step")
        self._shape = best[0]

    def propose(self, layers, unit_scores, level):
        if self._shape is None:
            raise RuntimeError("annealing.prepare() must run before propose() (the Pruner does this)")
        return _Scaled(shape=self._shape).propose(layers, unit_scores, level)
