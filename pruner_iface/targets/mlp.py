"""`mlp`: the intermediate neurons of feed-forward blocks.

A unit is one neuron: its row in the up projection (and, in gated MLPs such as SwiGLU, the gate
row it multiplies, coupled through the product), its bias, and its column in the down
projection. These are the coupled groups that are neither attention heads nor the normalised
residual stream (see `hidden`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .base import register_target
from .channel import Channel


@register_target("mlp")
@dataclass
class MLP(Channel):
    module_types: Sequence[Any] = ("Module",)
    supported_types = None
    unit_kind: ClassVar[str] = "feed-forward neuron"

    def wants(self, group) -> bool:
        return not group.attention and not group.approximate
