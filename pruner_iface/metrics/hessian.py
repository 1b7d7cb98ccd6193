"""`hessian`: Optimal Brain Damage saliency ½·w²·H_ii with the Hessian diagonal approximated by
the empirical Fisher E[g²] (LeCun et al., NeurIPS 1989; diagonal Fisher as in Theis et al. 2018).
The mean over batches of ½·w²·g² is ½·w²·E[g²] when the weights do not change between batches."""
from __future__ import annotations

from dataclasses import dataclass

from .base import register_metric
from .gradient import GradientStatistic


@register_metric("hessian")
@dataclass
class Hessian(GradientStatistic):
    additive = True

    def statistic(self, weight, grad):
        return 0.5 * weight.square() * grad.square()
