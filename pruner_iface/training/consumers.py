"""The layers whose input columns read a target's units (a unit's consumers), and the biases that
calibration mechanisms (bias_compensation, least_squares) create on them."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..errors import ConfigError
from ..metrics.base import unit_slices


def check_new_biases(plans: dict, layers: list, who: str) -> None:
    """Raise unless every consumer in `plans` (per layer, per unit, (ref, dim, idx)) that has no
    bias can get one: a Linear or conv whose own outputs these layers do not prune (a new bias
    would not be pruned with its rows)."""
    produced = {id(ref.module) for layer in layers for unit in unit_slices(layer, who)
                for ref, _, _, consumes in unit if not consumes}
    for plan in plans.values():
        for ref, _, _ in (s for unit in plan for s in unit):
            if getattr(ref.module, "bias", None) is not None:
                continue
            if not isinstance(ref.module, (nn.Linear, _ConvNd)) or not hasattr(ref.module, "bias"):
                raise ConfigError(f"{who}: consumer {ref.name!r} ({type(ref.module).__name__}) has no bias to "
                                  f"compensate into; a bias can be added to Linear and conv layers only")
            if id(ref.module) in produced:
                raise ConfigError(f"{who}: consumer {ref.name!r} has no bias and its own outputs are pruned by "
                                  f"this target, so a new bias would not be pruned with them; give it a bias "
                                  f"or exclude its units")


def ensure_bias(module: nn.Module, size: int) -> nn.Parameter:
    """The module's bias, created as zeros where it has none (a new parameter: optimizers built
    before it exist do not see it)."""
    if module.bias is None:
        weight = module.weight
        module.bias = nn.Parameter(torch.zeros(size, dtype=weight.dtype, device=weight.device))
    return module.bias
