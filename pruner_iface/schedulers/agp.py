"""`agp`: automated gradual pruning, s = s_f + (s_i − s_f)(1 − p)³ — fast start, slow finish.

Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model
compression", 2017.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import CurveScheduler, register_scheduler


@register_scheduler("agp")
@dataclass
class AGP(CurveScheduler):
    def amount(self, progress, a_i, a_f):
        return a_f + (a_i - a_f) * (1.0 - progress) ** 3
