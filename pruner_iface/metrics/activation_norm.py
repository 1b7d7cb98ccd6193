"""`activation_norm`: the L2 norm of each unit's output activation over the data, read where a
layer consumes it (see :mod:`.consumed_activation`)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import register_metric
from .consumed_activation import ConsumedActivation


@register_metric("activation_norm")
@dataclass
class ActivationNorm(ConsumedActivation):

    def statistic(self, rows):
        return rows.pow(2).sum(1)

    def score(self, total, count):
        return total.sqrt()
