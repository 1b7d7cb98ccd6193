"""`mean_activation`: the mean of a unit's activation after its non-linearity over the data
(Molchanov et al., ICLR 2017, "mean activation" criterion); the lowest means are pruned first.
Read where a layer consumes the unit (see :mod:`.consumed_activation`)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import register_metric
from .consumed_activation import ConsumedActivation


@register_metric("mean_activation")
@dataclass
class MeanActivation(ConsumedActivation):

    def statistic(self, rows):
        return rows.sum(1)

    def score(self, total, count):
        return total / count
