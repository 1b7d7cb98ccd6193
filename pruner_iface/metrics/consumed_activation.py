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

from ..distributed import sum_across_ranks_, sum_counts
from ..feature_stats import consumed_features, feature_rows, ordered_modules as _ordered
from .base import ActivationUnitMetric, consumer_slices, run_forward_passes


@dataclass
class ConsumedActivation(ActivationUnitMetric):
    """Base of `activation_norm`, `apoz` and `mean_activation` (not registered itself)."""

    @abstractmethod
    def statistic(self, rows: torch.Tensor) -> torch.Tensor:
        """Per feature, the sum over samples of the statistic; `rows` is ``[features, samples]``."""

    @abstractmethod
    def score(self, total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """A unit's score (higher: more important) from its summed statistic and sample count."""

    def collect(self, model, layers, data, loss_fn) -> None:
        plans = {id(layer): consumer_slices(layer, f"metric {self.registered_name!r}") for layer in layers}
        modules = {ref.module for plan in plans.values() for unit in plan for ref, _, _ in unit}
        sums: dict[nn.Module, torch.Tensor] = {}
        samples: dict[nn.Module, int] = {}

        def hook(module, inputs):
            rows = feature_rows(module, inputs[0].detach().float())
            per_feature = self.statistic(rows)
            sums[module] = per_feature if module not in sums else sums[module] + per_feature
            samples[module] = samples.get(module, 0) + rows.shape[1]

        run_forward_passes(model, modules, hook, data, loss_fn, self.batches, f"metric {self.registered_name!r}")
        order = [m for m in _ordered(modules, model) if m in sums]
        sum_across_ranks_(sums[m] for m in order)
        samples.update(zip(order, sum_counts([samples[m] for m in order])))
        self.reset()
        for layer in layers:
            totals, counts = [], []
            for unit in plans[id(layer)]:
                features = [(ref.module, consumed_features(ref, dim, idx)) for ref, dim, idx in unit]
                totals.append(sum(sums[m][f].sum() for m, f in features))
                counts.append(sum(samples[m] * len(f) for m, f in features))
            self._scores[id(layer)] = self.score(torch.stack(totals), torch.tensor(counts, dtype=torch.float32))
