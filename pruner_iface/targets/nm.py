"""`n:m`: keep n of every m consecutive weights along the input dimension (2:4 keeps 50%).

Units are the m-groups. Pruning a group removes its m-n lowest-scoring weights, so a layer can be
partly N:M (sparsity below (m-n)/m) and is fully N:M at sparsity (m-n)/m; sparsity counts weights.
Conv weights are viewed as ``[out, kh*kw*in]`` so that groups run along input channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import check
from .base import TensorLayer, TensorTarget, from_matrix, matrix_view, reduce_units, register_target


class NMLayer(TensorLayer):
    counts_weights = True
    masks_use_scores = True  # the weights kept inside each group are chosen by score

    def __init__(self, name: str, module: nn.Module, n: int, m: int):
        super().__init__(name, module)
        self.n, self.m = n, m
        rows, cols = matrix_view(self.weight.detach()).shape
        if cols % m:
            raise ConfigError(
                f"target.m: module {name!r} has {cols} input columns (weight viewed as [out, kh*kw*in]), "
                f"not a multiple of m={m}; exclude the module or choose m dividing {cols}"
            )
        self.num_units = rows * cols // m
        self.unit_weights = m - n

    @property
    def max_units(self) -> int:
        return self.num_units  # a fully N:M layer still keeps n of every m weights

    def group(self, tensor: torch.Tensor) -> torch.Tensor:
        return matrix_view(tensor).reshape(-1, self.m)

    def ungroup(self, grouped: torch.Tensor) -> torch.Tensor:
        return from_matrix(grouped.reshape(self.weight.shape[0], -1), self.weight.shape)

    def unit_scores(self, element_scores: torch.Tensor, reduce: str) -> torch.Tensor:
        lowest = self.group(element_scores).sort(-1).values[:, : self.m - self.n]
        return reduce_units(lowest, reduce)

    def current_pruned(self) -> torch.Tensor:
        mask = self.current_mask()
        if mask is None:
            return torch.zeros(self.num_units, dtype=torch.bool, device=self.weight.device)
        return ~self.group(mask).all(-1)

    def masks(self, pruned, member_scores=None):
        if not member_scores:
            raise ValueError("n:m masks need element scores to choose the weights inside each group")
        scores = self.group(member_scores[0]).float()
        current = self.current_mask()
        if current is not None:  # weights already removed stay removed
            scores = scores.masked_fill(~self.group(current), float("-inf"))
        order = scores.argsort(dim=-1, stable=True)[:, : self.m - self.n]
        drop = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order, True)
        keep = ~(drop & pruned.unsqueeze(-1))
        return {(self.module, self.param_name): self.ungroup(keep)}


@register_target("n:m")
@dataclass
class NM(TensorTarget):
    """N:M semi-structured sparsity (keep `n` of every `m`), as used by sparse tensor cores."""

    n: int = 2
    m: int = 4

    def __post_init__(self) -> None:
        for key in ("n", "m"):
            v = getattr(self, key)
            check(isinstance(v, int) and not isinstance(v, bool), key, f"must be an integer; got {v!r}")
        check(self.m >= 2, "m", f"must be at least 2; got {self.m}")
        check(1 <= self.n < self.m, "n", f"must satisfy 1 <= n < m (m={self.m}); got n={self.n}")
        super().__post_init__()

    @property
    def max_sparsity(self) -> float:
        return (self.m - self.n) / self.m

    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        return NMLayer(name, module, self.n, self.m)
