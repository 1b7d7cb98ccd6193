"""`head_importance`: Michel, Levy & Neubig, "Are Sixteen Heads Really Better than One?",
NeurIPS 2019. I_h = Σ_batches |∂L/∂ξ_h|, with ξ_h a gate (= 1) on head h's output, normalised
per layer by the layer's L2 norm.

The gate is never inserted: the head's output is read by the output projection's columns, and
for a linear layer y = W x scaling input features j by ξ gives ∂L/∂ξ = Σ_ij W_ij ∂L/∂W_ij over
those columns. So any unit whose output a layer reads (heads, MLP neurons, channels) gets the
same score from the weights' gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from ..registry import check
from .base import DataMetric, UnitMetric, consumer_slices, register_metric, run_backward_passes


@register_metric("head_importance")
@dataclass
class HeadImportance(UnitMetric, DataMetric):
    normalize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.normalize, bool), "normalize", f"must be true or false; got {self.normalize!r}")

    def reset(self) -> None:
        self._sums: dict[int, torch.Tensor] = {}

    def collect(self, model, layers, data, loss_fn) -> None:
        plans = {id(layer): consumer_slices(layer, f"metric {self.registered_name!r}") for layer in layers}
        refs = list({id(ref.weight): ref for plan in plans.values() for unit in plan for ref, _, _ in unit}.values())
        self.reset()
        run_backward_passes(model, refs, data, loss_fn, self.batches, lambda: self._accumulate(layers, plans),
                            self.registered_name)

    def observe(self, layers) -> None:
        """Training-loop hook: one batch from the gradients of the user's own backward pass."""
        who = f"metric {self.registered_name!r}"
        self._accumulate(layers, {id(layer): consumer_slices(layer, who) for layer in layers})

    def _accumulate(self, layers, plans) -> None:
        for layer in layers:
            gate = []
            for unit in plans[id(layer)]:
                total = torch.zeros(())
                for ref, dim, idx in unit:
                    if ref.weight.grad is None:
                        raise InputError(f"metric {self.registered_name!r}: {ref.name!r} has no gradient; is it used "
                                         f"by the loss and was backward() called?")
                    total = total + (ref.weight.detach() * ref.weight.grad).movedim(dim, 0)[idx].sum()
                gate.append(total.abs())
            key = id(layer)
            self._sums[key] = torch.stack(gate) if key not in self._sums else self._sums[key] + torch.stack(gate)

    def unit_scores(self, layer) -> torch.Tensor:
        if id(layer) not in self._sums:
            raise InputError(f"metric {self.registered_name!r} has seen no data: pass data and loss_fn to run()")
        scores = self._sums[id(layer)]
        if self.normalize:
            scores = scores / scores.norm().clamp_min(1e-12)
        return scores
