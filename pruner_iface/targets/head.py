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

import torch
from torch import nn

from ..registry import check
from ..selection_ops import lowest_k
from .base import register_target
from .channel import Channel, GroupLayer


class BalancedHeadLayer(GroupLayer):
    """Query heads of a grouped-query attention: every key/value group loses as many as the others
    and keeps at least one, so the query heads per key/value head stay equal."""

    free_choice = False

    def __init__(self, name: str, model: nn.Module, groups: list, kv_groups: list[int]):
        super().__init__(name, model, groups, round_to=1)
        ids = sorted(set(kv_groups))
        self.kv = torch.tensor([ids.index(g) for g in kv_groups])
        self.n_groups = len(ids)
        self.per_group = self.num_units // self.n_groups

    @property
    def max_units(self) -> int:
        return (self.per_group - 1) * self.n_groups

    def legal_count(self, count: int) -> int:
        return min(self.max_units, -(-count // self.n_groups) * self.n_groups)  # rounded up to whole rounds

    def choose(self, scores: torch.Tensor, count: int) -> torch.Tensor:
        pruned = torch.zeros(self.num_units, dtype=torch.bool)
        for g in range(self.n_groups):
            members = (self.kv == g).nonzero().reshape(-1)
            pruned[members[lowest_k(scores[members], count // self.n_groups)]] = True
        return pruned


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

    def make_layer(self, name, model, groups, graph):
        kv_of = {label: kv for site in graph.heads.values() for label, kv in zip(site.labels, site.kv_groups)}
        kv_groups = [kv_of.get(g.label) for g in groups]
        shared = None not in kv_groups and len(set(kv_groups)) < len(groups)
        if shared and self.gqa == "query":
            if len(groups) % len(set(kv_groups)):
                from ..errors import ConfigError

                raise ConfigError(f"attention {name!r}: {len(groups)} query heads cannot be split evenly over "
                                  f"{len(set(kv_groups))} key/value heads")
            return BalancedHeadLayer(name, model, groups, kv_groups)
        return super().make_layer(name, model, groups, graph)
