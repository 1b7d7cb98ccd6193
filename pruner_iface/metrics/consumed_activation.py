"""What the activation metrics share: statistics of each unit's output activation, read where a
layer consumes it (a conv's input channels, the output projection's input for an attention head,
the down projection's input for an MLP neuron) — that is, after the norm and activation that
follow the producer. Forward pre-hooks sum a per-feature statistic over `data` and are removed
afterwards; each metric turns a unit's sum and sample count into its score."""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError
from .base import DataMetric, UnitMetric, consumer_slices, run_forward_passes


@dataclass
class ConsumedActivation(UnitMetric, DataMetric):
    """Base of `activation_norm`, `apoz` and `mean_activation` (not registered itself)."""

    @abstractmethod
    def statistic(self, rows: torch.Tensor) -> torch.Tensor:
        """Per feature, the sum over samples of the statistic; `rows` is ``[features, samples]``."""

    @abstractmethod
    def score(self, total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """A unit's score (higher: more important) from its summed statistic and sample count."""

    def reset(self) -> None:
        self._scores: dict[int, torch.Tensor] = {}

    def collect(self, model, layers, data, loss_fn) -> None:
        plans = {id(layer): consumer_slices(layer, self.registered_name) for layer in layers}
        modules = {ref.module for plan in plans.values() for unit in plan for ref, _, _ in unit}
        sums: dict[nn.Module, torch.Tensor] = {}
        samples: dict[nn.Module, int] = {}

        def hook(module, inputs):
            x = inputs[0].detach().float()
            channel_dim = 1 if getattr(module, "weight", None) is not None and module.weight.dim() > 2 else -1
            rows = x.movedim(channel_dim, 0).reshape(x.shape[channel_dim], -1)
            per_feature = self.statistic(rows)
            sums[module] = per_feature if module not in sums else sums[module] + per_feature
            samples[module] = samples.get(module, 0) + rows.shape[1]

        run_forward_passes(model, modules, hook, data, loss_fn, self.batches, self.registered_name)
        self.reset()
        for layer in layers:
            totals, counts = [], []
            for unit in plans[id(layer)]:
                features = [(ref.module, _features(ref, dim, idx)) for ref, dim, idx in unit]
                totals.append(sum(sums[m][f].sum() for m, f in features))
                counts.append(sum(samples[m] * len(f) for m, f in features))
            self._scores[id(layer)] = self.score(torch.stack(totals), torch.tensor(counts, dtype=torch.float32))

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
