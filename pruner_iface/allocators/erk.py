"""`erk`: Erdős–Rényi-Kernel densities (Evci et al., "Rigging the Lottery", ICML 2020)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Proposal, register_allocator, Allocator


def layer_weight_shape(layer) -> tuple[int, ...]:
    """The shape of the weight a layer's units belong to (its producer's, for channel groups)."""
    weight = getattr(layer, "weight", None)
    if weight is None:
        weight = layer.module.weight
    return tuple(weight.shape)


def erk_densities(shapes: list[tuple[int, ...]], density: float) -> np.ndarray:
    """Per-layer densities ∝ (n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w) whose
    parameter-weighted mean is `density`; a layer that would exceed 1 is dense and the others
    are rescaled."""
    numel = np.array([math.prod(s) for s in shapes], dtype=np.float64)
    erk = np.array([sum(s) / math.prod(s) for s in shapes], dtype=np.float64)
    dense = np.zeros(len(shapes), dtype=bool)
    budget = density * numel.sum()
    while True:
        rest = budget - numel[dense].sum()
        scale = rest / max(float((erk * numel)[~dense].sum()), 1e-30)
        over = (~dense) & (erk * scale > 1.0)
        if not over.any():
            break
        dense |= over
    return np.where(dense, 1.0, np.clip(erk * scale, 0.0, 1.0))


@register_allocator("erk")
@dataclass
class Erk(Allocator):
    """Per-layer ratios from the Erdős–Rényi-Kernel rule: small layers keep more. `level` is the
    parameter-weighted fraction pruned over the selected layers."""

    def propose(self, layers, unit_scores, level):
        densities = erk_densities([layer_weight_shape(layer) for layer in layers], 1.0 - level)
        return Proposal(self.counts_from_ratios(layers, 1.0 - densities))
