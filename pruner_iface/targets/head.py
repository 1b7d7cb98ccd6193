"""`head`: attention heads, found in the dependency graph (a product of two activations or
scaled_dot_product_attention), whatever the module classes.

A unit is one head: its query, key and value rows (and biases) and the matching input columns of
the output projection, plus any per-head tensor (T5's relative attention bias). With
grouped-query attention, `gqa="query"` (default) makes each query head a unit and prunes the
same number in every key/value group, keeping the key/value heads (this works with a single
key/value head); `gqa="kv"` makes a key/value head with all its query heads one unit. speed_up
updates head counts and widths on the attention modules and the Hugging Face config.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from ..registry import check
from .base import register_target
from .channel import Channel


@register_target("head")
@dataclass
class Head(Channel):
    module_types: Sequence[Any] = ("Module",)
    gqa: str = "query"
    supported_types = None
    unit_kind: ClassVar[str] = "attention head"

    def __post_init__(self) -> None:
        check(self.gqa in ("query", "kv"), "gqa", f"must be 'query' (query heads, evenly in each key/value "
                                                  f"group) or 'kv' (a key/value head with its query heads); got {self.gqa!r}")
        super().__post_init__()

    def wants(self, group) -> bool:
        return group.attention

    def graph_options(self) -> dict:
        return {"gqa": self.gqa}
