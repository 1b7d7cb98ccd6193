"""Scheduler: how the objective grows over pruning steps.

Curves work on the *amount pruned*: sparsity itself for `sparsity`, 1 − budget for
`params`/`flops` budgets. Steps follow Intel Neural Compressor's counting: prune at every
``start <= step <= end`` with ``(step - start) % frequency == 0``; K = number of intervals; the
k-th pruning step (k = 0..K) gets ``curve(k / K)``; K = 0 (start == end) is one-shot. `rounds`
(NNI's total_times) may replace `end`: K = rounds, the first prune (k = 1) at start + frequency.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

from ..registry import Registry, check


@dataclass
class Scheduler(ABC):
    start: int = 0
    end: Optional[int] = None  # default: start (one pruning step)
    frequency: int = 1
    initial: Optional[float] = None  # objective value at k = 0; default: the dense model's
    rounds: Optional[int] = None  # instead of `end`: end = start + rounds·frequency (NNI's total_times)

    def __post_init__(self) -> None:
        if self.rounds is not None:
            check(isinstance(self.rounds, int) and not isinstance(self.rounds, bool) and self.rounds >= 1, "rounds",
                  f"must be a positive integer; got {self.rounds!r}")
            check(isinstance(self.start, int) and isinstance(self.frequency, int), "rounds",
                  "needs integer start and frequency")
            end = self.start + self.rounds * self.frequency
            check(self.end is None or self.end == end, "rounds",
                  f"gives end = start + rounds·frequency = {end}, but end is {self.end}; give one of them")
            self.end = end
        if self.end is None:
            self.end = self.start
        for key in ("start", "end", "frequency"):
            v = getattr(self, key)
            check(isinstance(v, int) and not isinstance(v, bool), key, f"must be an integer; got {v!r}")
        check(self.start >= 0, "start", f"must be >= 0; got {self.start}")
        check(self.end >= self.start, "end", f"must be >= start ({self.start}); got {self.end}")
        check(self.frequency >= 1, "frequency", f"must be >= 1; got {self.frequency}")

    def steps(self) -> list[int]:
        return list(range(self.start, self.end + 1, self.frequency))

    @abstractmethod
    def plan(self, objective) -> list[tuple[int, float]]:
        """[(step, objective value)], ending exactly at the objective's target."""


@dataclass
class CurveScheduler(Scheduler):
    """A scheduler defined by a curve of the amount pruned over progress k/K."""

    @abstractmethod
    def amount(self, progress: float, a_i: float, a_f: float) -> float:
        """Amount pruned at `progress` in [0, 1], from a_i to a_f."""

    def plan(self, objective) -> list[tuple[int, float]]:
        steps = self.steps()
        final = objective.target
        initial = objective.dense_value if self.initial is None else self.initial
        objective.check_value(initial, "scheduler.initial")
        a_i, a_f = objective.to_amount(initial), objective.to_amount(final)
        check(a_i <= a_f + 1e-12, "scheduler.initial",
              f"{initial} is already past the objective target {final}")
        K = len(steps) - 1
        if K == 0:
            return [(steps[0], final)]
        values = [objective.from_amount(self.amount(k / K, a_i, a_f)) for k in range(K)]
        return list(zip(steps, values + [final]))


SCHEDULERS: Registry[Scheduler] = Registry("scheduler", Scheduler)
register_scheduler = SCHEDULERS.register
