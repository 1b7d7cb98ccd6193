"""`block`: NxM blocks as in Intel Neural Compressor (N along output rows, M along input columns).

Conv weights are viewed as ``[out, kh*kw*in]`` after permuting to ``[out, kh, kw, in]``. A shape
that the block does not divide raises, unless ``remainder="partial"`` makes the edge blocks smaller.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..registry import check
from .base import TensorLayer, TensorTarget, from_matrix, matrix_view, reduce_units, register_target

REMAINDER_POLICIES = ("error", "partial")


class BlockLayer(TensorLayer):
    def __init__(self, name: str, module: nn.Module, block: tuple[int, int], remainder: str):
        super().__init__(name, module)
        self.block = block
        rows, cols = matrix_view(self.weight.detach()).shape
        n, m = block
        if (rows % n or cols % m) and remainder == "error":
            raise ConfigError(
                f"target.block: block {n}x{m} does not divide module {name!r} whose weight is viewed as "
                f"[{rows}, {cols}] (out x in); choose a block that divides it, exclude the module, "
                f"or set remainder='partial' to allow smaller edge blocks"
            )
        self.rows, self.cols = rows, cols
        self.grid = (-(-rows // n), -(-cols // m))
        self.num_units = self.grid[0] * self.grid[1]
        ones = torch.ones(rows, cols, dtype=torch.bool)
        self.valid = self._group_matrix(ones, pad_value=False)
        self.padded = bool((~self.valid).any())
        self.unit_weights = self.valid.sum(-1).long() if self.padded else n * m

    def _group_matrix(self, mat: torch.Tensor, pad_value) -> torch.Tensor:
        n, m = self.block
        gr, gc = self.grid
        pad_r, pad_c = gr * n - self.rows, gc * m - self.cols
        if pad_r or pad_c:
            if mat.dtype == torch.bool:
                mat = F.pad(mat.to(torch.uint8), (0, pad_c, 0, pad_r), value=int(pad_value)).bool()
            else:
                mat = F.pad(mat, (0, pad_c, 0, pad_r), value=pad_value)
        return mat.reshape(gr, n, gc, m).permute(0, 2, 1, 3).reshape(gr * gc, n * m)

    def group(self, tensor: torch.Tensor) -> torch.Tensor:
        return self._group_matrix(matrix_view(tensor), pad_value=0)

    def ungroup(self, grouped: torch.Tensor) -> torch.Tensor:
        n, m = self.block
        gr, gc = self.grid
        mat = grouped.reshape(gr, gc, n, m).permute(0, 2, 1, 3).reshape(gr * n, gc * m)
        return from_matrix(mat[: self.rows, : self.cols], self.weight.shape)

    def unit_scores(self, element_scores: torch.Tensor, reduce: str) -> torch.Tensor:
        valid = self.valid.to(element_scores.device) if self.padded else None
        return reduce_units(self.group(element_scores), reduce, valid)

    def current_pruned(self) -> torch.Tensor:
        mask = self.current_mask()
        if mask is None:
            return torch.zeros(self.num_units, dtype=torch.bool, device=self.weight.device)
        return ~self._group_matrix(matrix_view(mask), pad_value=False).any(-1)


@register_target("block")
@dataclass
class Block(TensorTarget):
    """NxM blocks of Linear / ConvNd weights (units: blocks). ``block=[4, 1]`` is INC's 4x1."""

    block: Sequence[int] = (4, 1)
    remainder: str = "error"

    def __post_init__(self) -> None:
        check(
            isinstance(self.block, (list, tuple)) and len(self.block) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in self.block),
            "block", f"must be two positive integers [N, M]; got {self.block!r}",
        )
        check(self.remainder in REMAINDER_POLICIES, "remainder",
              f"{self.remainder!r} is not one of {', '.join(REMAINDER_POLICIES)}")
        self.block = tuple(self.block)
        super().__post_init__()

    def make_layer(self, name: str, module: nn.Module) -> TensorLayer:
        return BlockLayer(name, module, self.block, self.remainder)
