"""`uniform`: the same ratio of units in every layer."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Allocator, Proposal, register_allocator, units_for


@register_allocator("uniform")
@dataclass
class Uniform(Allocator):
    """Every layer prunes ceil(level × its units)."""

    def propose(self, layers, unit_scores, level):
        return Proposal([units_for(level, layer.num_units) for layer in layers])
