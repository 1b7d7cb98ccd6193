"""`decay`: Intel Neural Compressor's decay curves over k/K.

- exp:    s = 1 − (1 − s_i)·((1 − s_f)/(1 − s_i))^(k/K)   (density shrinks geometrically)
- cos:    s = s_i + (s_f − s_i)(1 − cos(πk/2K))
- cube:   s = s_i + (s_f − s_i)(k/K)³                     (slow start; not AGP)
- linear: s = s_i + (s_f − s_i)·k/K
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..registry import check
from .base import CurveScheduler, register_scheduler

CURVES = ("exp", "cos", "cube", "linear")


@register_scheduler("decay")
@dataclass
class Decay(CurveScheduler):
    curve: str = "exp"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.curve in CURVES, "curve", f"{self.curve!r} is not one of {', '.join(CURVES)}")

    def amount(self, progress, a_i, a_f):
        if self.curve == "exp":
            return 1.0 - (1.0 - a_i) * ((1.0 - a_f) / (1.0 - a_i)) ** progress
        if self.curve == "cos":
            return a_i + (a_f - a_i) * (1.0 - math.cos(math.pi * progress / 2.0))
        if self.curve == "cube":
            return a_i + (a_f - a_i) * progress**3
        return a_i + (a_f - a_i) * progress
