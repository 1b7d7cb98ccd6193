"""`bias_compensation`: FLAP's baseline bias compensation (An et al., AAAI 2024). When a unit
goes, the layers that consumed it lose W_{:,j}·X_j; replacing X_j by its calibration mean keeps
the expected output, so W_{:,pruned}·mean(X_pruned) is added to each consumer's bias (a bias
is created on a Linear/conv that has none). The masked model and the shrunk one compute the
same thing, since the bias stays when the columns go.

For a conv consumer the channel mean is taken over all positions, so the compensation is exact
away from zero-padded borders. Means are read from the model as it is before each pruning step.
A bias created here is a new parameter: build the fine-tuning optimizer after pruning.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..feature_stats import consumed_columns, consumed_features, input_moments
from ..metrics.base import check_batches, consumer_slices
from .base import MaskChange, Mechanism, register_mechanism
from .consumers import check_new_biases, ensure_bias

WHO = "training mechanism 'bias_compensation'"


@register_mechanism("bias_compensation")
@dataclass
class BiasCompensation(Mechanism):
    batches: int | None = None

    requires_data = True
    state_keys = ("_compensated",)

    def __post_init__(self) -> None:
        check_batches(self.batches)

    def bind(self, context) -> None:
        super().bind(context)
        self._plans = {id(layer): consumer_slices(layer, WHO) for layer in context.layers}
        check_new_biases(self._plans, context.layers, WHO)
        self._means: dict[nn.Module, torch.Tensor] = {}
        self._compensated = 0

    def collect(self, model, data, loss_fn) -> None:
        modules = {ref.module for plan in self._plans.values() for unit in plan for ref, _, _ in unit}
        moments = input_moments(model, modules, data, loss_fn, self.batches, WHO)
        self._means = {module: m.mean for module, m in moments.items()}

    def reconstruct(self, changes: list[MaskChange]) -> list[MaskChange]:
        additions: dict[nn.Module, torch.Tensor] = {}
        for change in changes:
            plan = self._plans[id(change.layer)]
            for unit in (change.after & ~change.before).nonzero().reshape(-1).tolist():
                for ref, dim, idx in plan[unit]:
                    mean = self._means[ref.module][consumed_features(ref, dim, idx)]
                    columns = consumed_columns(ref, dim, idx).double().sum(2)  # [features, outputs]
                    add = (columns * mean.to(columns.device).unsqueeze(1)).sum(0)
                    additions[ref.module] = add if ref.module not in additions else additions[ref.module] + add
                self._compensated += 1
        with torch.no_grad():  # computed from the whole weights first; the masks come after
            for module, add in additions.items():
                ensure_bias(module, add.numel())
                module.bias.add_(add.to(module.bias.dtype))
        return changes

    def notes(self) -> dict:
        return {"bias_compensated_units": getattr(self, "_compensated", 0)}
