"""`global`: one score threshold over the units of all layers."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, ObjectiveNotReachedError
from ..selection_ops import kth_smallest, torch_lowest
from .base import Allocator, Proposal, register_allocator, units_for


@register_allocator("global")
@dataclass
class GlobalThreshold(Allocator):
    """Prune the `level` fraction of all units with the lowest scores, wherever they are."""

    exact = True

    def allocate_exact(self, layers, unit_scores, objective) -> list[torch.Tensor]:
        """``objective.units(all units left)`` more, the lowest-scoring over all layers together
        (scores concatenated in layer order, chosen as torch.topk picks them: torch's
        global_unstructured)."""
        for layer in layers:
            if not layer.free_choice:
                raise ConfigError(f"allocator 'global' with the amount objective needs layers whose units can be "
                                  f"chosen freely; {layer.name!r} constrains its sets (use allocator 'uniform')")
        already = [layer.current_pruned() for layer in layers]
        free = [(~done).nonzero().reshape(-1) for done in already]
        flat = torch.cat([scores[f].reshape(-1).float() for scores, f in zip(unit_scores, free)])
        chosen = torch_lowest(flat, objective.units(flat.numel(), "the selected layers"))
        out, offset = [], 0
        for layer, done, f in zip(layers, already, free):
            mine = chosen[(chosen >= offset) & (chosen < offset + len(f))] - offset
            pruned = done.clone()
            pruned[f[mine]] = True
            if int(pruned.sum()) > layer.max_units:
                raise ObjectiveNotReachedError(f"amount: layer {layer.name!r} would lose all of its units; at least "
                                               f"one is kept. The model was left as it was")
            out.append(pruned)
            offset += len(f)
        return out

    def propose(self, layers, unit_scores, level):
        total = sum(s.numel() for s in unit_scores)
        k = units_for(level, total)
        if k <= 0:
            return Proposal([0] * len(layers))
        if k >= total:
            return Proposal([s.numel() for s in unit_scores])
        flat = torch.cat([s.reshape(-1).float() for s in unit_scores])
        t = kth_smallest(flat, k, scratch=True)
        del flat
        sets = [s <= t for s in unit_scores]
        counts = [int(torch.count_nonzero(chosen)) for chosen in sets]
        if sum(counts) == k:
            return Proposal(counts, sets)
        # ties at the threshold: units below it, then the tied ones shared in proportion per layer
        sets = [s < t for s in unit_scores]
        counts = [int(torch.count_nonzero(chosen)) for chosen in sets]
        ties = [(s == t).reshape(-1).nonzero().reshape(-1) for s in unit_scores]
        missing = k - sum(counts)
        n_ties = sum(len(x) for x in ties)
        extra = [missing * len(x) // n_ties for x in ties]
        left = missing - sum(extra)
        for i, x in enumerate(ties):
            more = min(left, len(x) - extra[i])
            extra[i] += more
            left -= more
        for chosen, x, e in zip(sets, ties, extra):
            chosen.reshape(-1)[x[:e]] = True
        return Proposal([c + e for c, e in zip(counts, extra)], sets)
