"""`one-pass`: prune once, at `start`, straight to the objective."""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import check
from .base import Scheduler, register_scheduler


@register_scheduler("one-pass")
@dataclass
class OnePass(Scheduler):
    def __post_init__(self) -> None:
        check(self.rounds is None, "rounds", "one-pass prunes once; use linear, agp or decay for rounds")
        super().__post_init__()

    def steps(self) -> list[int]:
        return [self.start]

    def plan(self, objective):
        return [(self.start, objective.target)]
