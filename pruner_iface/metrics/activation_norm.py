"""`activation_norm`: the L2 norm of each unit's output activation over the data, read where a
layer consumes it (the output projection's input for an attention head, the down projection's
input for an MLP neuron). Forward hooks collect Σx² per input feature and are removed after."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError, MissingDataError
from ..inputs import eval_mode
from .base import DataMetric, UnitMetric, consumer_slices, register_metric


@register_metric("activation_norm")
@dataclass
class ActivationNorm(UnitMetric, DataMetric):

    def reset(self) -> None:
        self._scores: dict[int, torch.Tensor] = {}

    def collect(self, model, layers, data, loss_fn) -> None:
        if data is None or loss_fn is None:
            raise MissingDataError(f"metric {self.registered_name!r} needs activations: pass data=<batches> and "
                                   f"loss_fn=<callable(model, batch)> (only its forward pass is used) to Pruner.run")
        plans = {id(layer): consumer_slices(layer, self.registered_name) for layer in layers}
        modules = {ref.module for plan in plans.values() for unit in plan for ref, _, _ in unit}
        squares: dict[nn.Module, torch.Tensor] = {}

        def hook(module, inputs):
            x = inputs[0].detach().float()
            channel_dim = 1 if getattr(module, "weight", None) is not None and module.weight.dim() > 2 else -1
            per_feature = x.pow(2).movedim(channel_dim, 0).reshape(x.shape[channel_dim], -1).sum(1)
            squares[module] = per_feature if module not in squares else squares[module] + per_feature

        handles = [m.register_forward_pre_hook(hook) for m in modules]
        seen = 0
        try:
            with torch.no_grad(), eval_mode(model):
                for batch in data:
                    if self.batches is not None and seen >= self.batches:
                        break
                    loss_fn(model, batch)
                    seen += 1
        finally:
            for h in handles:
                h.remove()
        if seen == 0:
            raise MissingDataError(f"metric {self.registered_name!r}: data yielded no batch")
        self.reset()
        for layer in layers:
            self._scores[id(layer)] = torch.stack([
                sum(squares[ref.module][_features(ref, dim, idx)].sum() for ref, dim, idx in unit)
                for unit in plans[id(layer)]]).sqrt()

    def observe(self, layers) -> None:
        raise InputError(f"metric {self.registered_name!r} reads activations in Pruner.run(data=..., loss_fn=...); "
                         f"it cannot learn from gradients in the training-loop hooks")

    def unit_scores(self, layer) -> torch.Tensor:
        if id(layer) not in self._scores:
            raise InputError(f"metric {self.registered_name!r} has seen no data: pass data and loss_fn to run()")
        return self._scores[id(layer)]


def _features(ref, dim: int, idx: torch.Tensor) -> torch.Tensor:
    """Input features of the module that weight indices `idx` along `dim` read (grouped convs:
    the same column in every group)."""
    module = ref.module
    groups = getattr(module, "groups", 1)
    if groups > 1 and ref.weight.dim() > 2:
        per_group = ref.weight.shape[1]
        return (idx.reshape(1, -1) + per_group * torch.arange(groups).reshape(-1, 1)).reshape(-1)
    return idx
