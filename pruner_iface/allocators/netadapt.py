"""`netadapt`: NetAdapt's greedy per-layer search (Yang et al., "NetAdapt: Platform-Aware Neural
Network Adaptation for Mobile Applications", ECCV 2018).

Each round asks for `step` more of the objective (a fraction of the dense value; the step
shrinks by `decay` per round, 2.5% and ×0.96 in the paper). Every layer makes one proposal —
its lowest-scoring units, as few as make the objective's estimate save the step with that layer
alone — and each proposal is scored by evaluate() on a masked copy (NetAdapt fine-tunes briefly
there: do that inside evaluate). The best proposal is kept and the next round starts from it,
until the step's target is met. Strength `level` walks the kept path, so the loop settles on
the first allocation along it that meets the objective.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ObjectiveNotReachedError
from ..registry import check
from .base import Allocator, Proposal, register_allocator


@register_allocator("netadapt")
@dataclass
class NetAdapt(Allocator):
    step: float = 0.025
    decay: float = 0.96

    needs_evaluate = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.step, (int, float)) and 0.0 < self.step < 1.0, "step",
              f"must be in (0, 1) (a fraction of the dense value); got {self.step!r}")
        check(isinstance(self.decay, (int, float)) and 0.0 < self.decay <= 1.0, "decay",
              f"must be in (0, 1]; got {self.decay!r}")
        self._path: list[list[int]] = []
        self.history: list[dict] = []  # every round of the last step: proposals and the kept layer

    def prepare(self, context):
        layers, scores, objective = context.layers, context.unit_scores, context.objective

        def sets(counts):
            return [layer.choose(s, c) for layer, s, c in zip(layers, scores, counts)]

        def amount(counts):
            return objective.to_amount(objective.estimate(layers, sets(counts)))

        lows, highs = self.bounds(layers, context.already)
        counts = [layer.legal_count(c) for layer, c in zip(layers, lows)]
        goal, delta = objective.to_amount(context.target), self.step
        reached = amount(counts)
        self._path, self.history = [list(counts)], []
        while reached < goal - 1e-12:
            aim = min(goal, reached + delta)
            proposals = []
            for i, layer in enumerate(layers):
                k = self._fewest(counts, i, layer, highs[i], aim, amount)
                if k is not None:
                    trial = counts[:i] + [k] + counts[i + 1:]
                    proposals.append((float(context.evaluate(sets(trial))), amount(trial), i, trial))
            if not proposals:  # no layer alone saves the step: take the best of each layer's largest cut
                for i, layer in enumerate(layers):
                    top = layer.legal_count(highs[i])
                    if top > counts[i]:
                        trial = counts[:i] + [top] + counts[i + 1:]
                        proposals.append((float(context.evaluate(sets(trial))), amount(trial), i, trial))
            if not proposals:
                raise ObjectiveNotReachedError(
                    f"netadapt: every layer is at its bound and the {objective.registered_name} target "
                    f"{context.target:.4g} is not met; the model was left as it was before this step")
            score, reached, chosen, counts = max(proposals, key=lambda p: (p[0], p[1]))
            self.history.append({"aim": aim, "kept": layers[chosen].name, "score": score,
                                 "proposals": {layers[p[2]].name: p[0] for p in proposals}})
            self._path.append(list(counts))
            delta *= self.decay

    @staticmethod
    def _fewest(counts, i, layer, high, aim, amount):
        """The fewest units of layer i (more than now, at most `high`) whose estimate reaches `aim`."""
        lo, hi = counts[i] + 1, high
        if lo > hi or amount(counts[:i] + [layer.legal_count(hi)] + counts[i + 1:]) < aim - 1e-12:
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            if amount(counts[:i] + [layer.legal_count(mid)] + counts[i + 1:]) >= aim - 1e-12:
                hi = mid
            else:
                lo = mid + 1
        k = layer.legal_count(lo)
        return k if k > counts[i] else None

    def propose(self, layers, unit_scores, level):
        if not self._path:
            raise RuntimeError("netadapt.prepare() must run before propose() (the Pruner does this)")
        return Proposal(self._path[min(len(self._path) - 1, round(level * (len(self._path) - 1)))])
