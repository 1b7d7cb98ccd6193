"""`fluctuation`: FLAP's structured metric (An et al., "Fluctuation-based Adaptive Structured
Pruning for Large Language Models", AAAI 2024): a unit's score is Σ_j Var(X_j)·‖W_{:,j}‖² over
the input features j of the layers that consume it (the down projection's columns for an MLP
neuron, the output projection's columns of a head), Var taken over the calibration samples. A
unit whose input barely fluctuates can be replaced by its mean, which `bias_compensation` adds
to the consumer's bias.

`standardize` z-scores each layer's unit scores (FLAP's adaptive structure search: with the
`global` allocator, layers then lose different shares).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..feature_stats import consumed_columns, consumed_features, input_moments
from ..registry import check
from .base import ActivationUnitMetric, consumer_slices, register_metric


@register_metric("fluctuation")
@dataclass
class Fluctuation(ActivationUnitMetric):
    standardize: bool = False

    def __post_init__(self) -> None:
        check(isinstance(self.standardize, bool), "standardize", f"must be true or false; got {self.standardize!r}")
        super().__post_init__()

    def collect(self, model, layers, data, loss_fn) -> None:
        plans = {id(layer): consumer_slices(layer, f"metric {self.registered_name!r}") for layer in layers}
        modules = {ref.module for plan in plans.values() for unit in plan for ref, _, _ in unit}
        moments = input_moments(model, modules, data, loss_fn, self.batches, f"metric {self.registered_name!r}")
        self.reset()
        for layer in layers:
            scores = []
            for unit in plans[id(layer)]:
                total = torch.zeros((), dtype=torch.float64)
                for ref, dim, idx in unit:
                    variance = moments[ref.module].variance[consumed_features(ref, dim, idx)]
                    norms = consumed_columns(ref, dim, idx).double().pow(2).sum((1, 2))
                    total = total + (variance.to(norms.device) * norms).sum().cpu()
                scores.append(total)
            scores = torch.stack(scores).float()
            if self.standardize:
                scores = (scores - scores.mean()) / scores.std(unbiased=False).clamp_min(1e-12)
            self._scores[id(layer)] = scores
