"""Candidate models: copies of the model with a proposed set of units pruned, for what must be
measured rather than predicted (latency, evaluate() of allocators that search). The model itself
is never touched, so a search that fails leaves it as it was."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .masks import set_mask
from .targets.base import Target, TargetLayer


def masked_copy(model: nn.Module, layers: list[TargetLayer], pruned: list[torch.Tensor],
                element_scores: list[list[torch.Tensor]] | None = None) -> tuple[nn.Module, list[TargetLayer]]:
    """A deep copy of `model` (and of `layers`, bound to the copy) with the `pruned` units masked."""
    model_copy, layers_copy = copy.deepcopy((model, layers))
    scores = element_scores or [[] for _ in layers]
    for layer, units, elem in zip(layers_copy, pruned, scores):
        if units.any():
            for (module, name), keep in layer.masks(units, elem).items():
                set_mask(module, name, keep)
    return model_copy, layers_copy


def shrunk_copy(model: nn.Module, target: Target, layers: list[TargetLayer], pruned: list[torch.Tensor]) -> nn.Module:
    """A physically smaller copy of `model` with the `pruned` units removed by `target.speed_up`."""
    model_copy, layers_copy = masked_copy(model, layers, pruned)
    notes = dict(vars(target))  # speed_up records facts for the report about the real model only
    try:
        target.speed_up(model_copy, layers_copy)
    finally:
        vars(target).clear()
        vars(target).update(notes)
    return model_copy
