"""What a set of pruned units removes, parameter by parameter, for the params and FLOPs objectives.

Units can overlap on one tensor (a conv loses output rows through one unit and input columns
through another), so removals are counted per (tensor, dim) over all layers and combine as a
product: a tensor keeps prod_d (1 - removed_d / size_d) of its elements.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from torch import nn


@dataclass
class Removal:
    """`removed` of the `size` slices along `dim` of ``module.<param_name>`` (dim None: elements)."""

    module: nn.Module
    param_name: str
    dim: Optional[int]
    removed: int
    size: int


def removed_per_dim(removals: Iterable[Removal]) -> dict[tuple[int, str, Optional[int]], list]:
    """{(id(module), param name, dim): [module, slices removed, size]} summed over removals."""
    per_dim: dict[tuple[int, str, Optional[int]], list] = {}
    for r in removals:
        key = (id(r.module), r.param_name, r.dim)
        entry = per_dim.setdefault(key, [r.module, 0, r.size])
        entry[1] += r.removed
    return per_dim


def kept_fractions(removals: Iterable[Removal]) -> dict[tuple[int, str], tuple[nn.Module, float]]:
    """{(id(module), param name): (module, fraction of the tensor's elements kept)}."""
    kept: dict[tuple[int, str], tuple[nn.Module, float]] = {}
    for (mid, name, _), (module, removed, size) in removed_per_dim(removals).items():
        previous = kept.get((mid, name), (module, 1.0))[1]
        kept[(mid, name)] = (module, previous * max(0.0, 1.0 - removed / size))
    return kept


def layer_removals(layers, pruned_sets) -> list[Removal]:
    return [r for layer, pruned in zip(layers, pruned_sets) for r in layer.removals(pruned)]
