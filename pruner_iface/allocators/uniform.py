"""`uniform`: the same ratio of units in every layer."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ObjectiveNotReachedError
from ..selection_ops import torch_lowest
from .base import Allocator, Proposal, register_allocator, units_for


@register_allocator("uniform")
@dataclass
class Uniform(Allocator):
    """Every layer prunes ceil(level × its units)."""

    exact = True

    def allocate_exact(self, layers, unit_scores, objective) -> list[torch.Tensor]:
        """Each layer prunes ``objective.units(its units left)`` more: the lowest-scoring free
        units as torch.topk picks them (layers that constrain their sets round the count)."""
        already = [layer.current_pruned() for layer in layers]
        _, highs = self.bounds(layers, [int(a.sum()) for a in already])
        out = []
        for layer, scores, done, high in zip(layers, unit_scores, already, highs):
            free = (~done).nonzero().reshape(-1)
            count = int(done.sum()) + objective.units(len(free), repr(layer.name))
            if count > high:
                raise ObjectiveNotReachedError(
                    f"amount: layer {layer.name!r} may lose at most {high} of its {layer.num_units} units (at least "
                    f"one is kept, and max_ratio/overrides), not {count}; the model was left as it was")
            if not layer.free_choice:
                out.append(layer.choose(scores, layer.legal_count(count)))
                continue
            pruned = done.clone()
            pruned[free[torch_lowest(scores[free], count - int(done.sum()))]] = True
            out.append(pruned)
        return out

    def propose(self, layers, unit_scores, level):
        return Proposal([units_for(level, layer.num_units) for layer in layers])
