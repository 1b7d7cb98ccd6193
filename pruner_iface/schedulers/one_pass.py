"""`one-pass`: prune once, at `start`, straight to the objective."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Scheduler, register_scheduler


@register_scheduler("one-pass")
@dataclass
class OnePass(Scheduler):
    def steps(self) -> list[int]:
        return [self.start]

    def plan(self, objective):
        return [(self.start, objective.target)]
