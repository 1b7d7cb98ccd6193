"""`linear`: s = s_i + (s_f − s_i)·k/K."""
from __future__ import annotations

from dataclasses import dataclass

from .base import CurveScheduler, register_scheduler


@register_scheduler("linear")
@dataclass
class Linear(CurveScheduler):
    def amount(self, progress, a_i, a_f):
        return a_i + (a_f - a_i) * progress
