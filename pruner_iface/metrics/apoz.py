"""`apoz`: Average Percentage of Zeros of a unit's activation after its non-linearity (Hu et al.,
"Network Trimming", 2016). Units that are mostly zero are pruned first, so the score is
1 − APoZ. Read where a layer consumes the unit (see :mod:`.consumed_activation`), i.e. after the
norm and activation that follow the producer."""
from __future__ import annotations

from dataclasses import dataclass

from .base import register_metric
from .consumed_activation import ConsumedActivation


@register_metric("apoz")
@dataclass
class APoZ(ConsumedActivation):

    def statistic(self, rows):
        return (rows == 0).sum(1).float()

    def score(self, total, count):
        return 1.0 - total / count
