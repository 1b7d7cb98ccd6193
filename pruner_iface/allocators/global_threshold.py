"""`global`: one score threshold over the units of all layers."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..selection_ops import kth_smallest
from .base import Allocator, Proposal, register_allocator


@register_allocator("global")
@dataclass
class GlobalThreshold(Allocator):
    """Prune the `level` fraction of all units with the lowest scores, wherever they are."""

    def propose(self, layers, unit_scores, level):
        total = sum(s.numel() for s in unit_scores)
        k = round(level * total)
        if k <= 0:
            return Proposal([0] * len(layers))
        if k >= total:
            return Proposal([s.numel() for s in unit_scores])
        flat = torch.cat([s.reshape(-1).float() for s in unit_scores])
        t = kth_smallest(flat, k)
        del flat
        counts = [int((s <= t).sum()) for s in unit_scores]
        if sum(counts) == k:
            return Proposal(counts, threshold=t)
        # ties at the threshold: take units below it, then share the tied ones in proportion
        counts = [int((s < t).sum()) for s in unit_scores]
        ties = [int((s == t).sum()) for s in unit_scores]
        missing = k - sum(counts)
        shares = [missing * n // sum(ties) for n in ties]
        for i in range(len(counts)):
            counts[i] += shares[i]
        left = missing - sum(shares)
        for i, n in enumerate(ties):
            extra = min(left, n - shares[i])
            counts[i] += extra
            left -= extra
        return Proposal(counts)
