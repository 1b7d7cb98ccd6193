"""`amount`: torch.nn.utils.prune's amount — prune a fraction (`target`) of the units not pruned
yet, rounded as torch rounds (``round(amount · n)``, halves to even), or exactly `count` of them;
in every layer (allocator `uniform`) or over all layers together (allocator `global`).

Pruning 0.5 twice therefore leaves 25%. The allocation is exact, without a search; the value
reported is the fraction of units pruned, as for `sparsity`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from ..errors import ObjectiveNotReachedError
from ..registry import check
from .base import register_objective
from .sparsity import Sparsity


@register_objective("amount")
@dataclass
class Amount(Sparsity):
    count: Optional[int] = None  # an absolute number of units instead of a fraction

    exact: ClassVar[bool] = True  # met by one exact allocation (Allocator.allocate_exact), not a search

    def __post_init__(self) -> None:
        if self.count is not None:
            check(self.target is None, "count", "give either target (a fraction of the units left) or count, not both")
            check(isinstance(self.count, int) and not isinstance(self.count, bool) and self.count >= 0, "count",
                  f"must be a non-negative integer number of units; got {self.count!r}")
            self.target = 0.0
        super().__post_init__()

    def units(self, left: int, where: str) -> int:
        """How many of the `left` unpruned units of `where` to prune now."""
        k = self.count if self.count is not None else round(self.target * left)
        if k > left:
            raise ObjectiveNotReachedError(f"amount: {where} has {left} units left; cannot prune {k} of them; the "
                                           f"model was left as it was")
        return k
