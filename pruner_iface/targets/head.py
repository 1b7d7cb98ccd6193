"""`head`: attention heads, found in the dependency graph (a product of two activations or
scaled_dot_product_attention), whatever the module classes.

A unit is one head: its query, key and value rows (and biases) and the matching input columns of
the output projection, plus any per-head tensor (T5's relative attention bias). Where key/value
heads are shared (grouped-query attention), a unit is a key/value head with its query heads.
speed_up updates head counts and widths on the attention modules and the Hugging Face config.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .base import register_target
from .channel import Channel


@register_target("head")
@dataclass
class Head(Channel):
    module_types: Sequence[Any] = ("Module",)
    supported_types = None
    unit_kind: ClassVar[str] = "attention head"

    def wants(self, group) -> bool:
        return group.attention
