"""`hidden`: the width of the residual stream.

A unit is one hidden channel everywhere it flows: embedding columns, every LayerNorm/RMSNorm
entry, every residual add, the input columns of q/k/v and MLP projections, the output rows of
attention and MLP output projections, and the LM head's columns (a tied weight goes once).
Normalisation statistics change when channels go, so these units are approximate: speed_up
measures and reports the difference. A model whose output is the hidden state (an encoder)
returns narrower states, so outputs are not protected here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .base import register_target
from .channel import Channel


@register_target("hidden")
@dataclass
class Hidden(Channel):
    module_types: Sequence[Any] = ("Module",)
    supported_types = None
    protect_outputs: ClassVar[bool] = False
    unit_kind: ClassVar[str] = "hidden channel"

    def wants(self, group) -> bool:
        return group.approximate and not group.attention
