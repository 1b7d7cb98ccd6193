"""`uniform`: the same ratio of units in every layer."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Allocator, Proposal, register_allocator


@register_allocator("uniform")
@dataclass
class Uniform(Allocator):
    """Every layer prunes round(level × its units)."""

    def propose(self, layers, unit_scores, level):
        return Proposal([round(level * layer.num_units) for layer in layers])
