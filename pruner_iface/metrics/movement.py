"""`movement`: movement pruning (Sanh, Wolf & Rush, NeurIPS 2020). Each weight has a learned
score trained through a straight-through estimator, whose gradient is ∂L/∂W·W; with a plain
gradient step S ← S − lr·W·∂L/∂W the scores are the accumulated −W·g over training (lr only
scales them, so the ranking does not depend on it). Weights moving away from zero score high.

Drive it with the training-loop hooks (``on_before_optimizer_step`` after each backward); the
scores persist across pruning steps, as in the paper. ``Pruner.run(data, loss_fn)`` accumulates
them over the given batches instead (without updating the weights).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import register_metric, weight_grad
from .gradient import GradientStatistic


@register_metric("movement")
@dataclass
class Movement(GradientStatistic):

    def observe(self, layers) -> None:
        for layer in layers:
            step = (layer.weight.detach() * weight_grad(layer, self.registered_name)).float()
            key = id(layer)
            self._sums[key] = -step if key not in self._sums else self._sums[key].sub_(step)
        self._count += 1

    def after_prune(self) -> None:
        """Learned scores carry over between pruning steps."""

    def element_scores(self, layer):
        if self._count == 0 or id(layer) not in self._sums:
            return super().element_scores(layer)  # raises: no gradient seen yet
        return self._sums[id(layer)].clone()
