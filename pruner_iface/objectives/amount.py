"""`amount`: torch.nn.utils.prune's amount — prune a fraction of the units not pruned yet
(`target` a float in [0, 1], rounded as torch rounds: ``round(amount · n)``, halves to even), or
exactly that many of them (`target` an integer count); in every layer (allocator `uniform`) or
over all layers together (allocator `global`).

`rounding="floor"` truncates instead (``int(amount · n)``, as NNI's sparse_ratio does). Pruning
0.5 twice leaves 25%. The allocation is exact, without a search; the value
reported is the fraction of units pruned, as for `sparsity`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import ObjectiveNotReachedError
from ..registry import check
from .base import register_objective
from .sparsity import Sparsity


@register_objective("amount")
@dataclass
class Amount(Sparsity):
    rounding: str = "round"  # "round": round(amount·n), halves to even (torch); "floor": int(amount·n) (NNI)

    exact: ClassVar[bool] = True  # met by one exact allocation (Allocator.allocate_exact), not a search

    def __post_init__(self) -> None:
        check(self.rounding in ("round", "floor"), "rounding", f"must be 'round' or 'floor'; got {self.rounding!r}")
        super().__post_init__()

    def check_value(self, value, key) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            check(value >= 0, key, f"a count of units must be >= 0; got {value}")
        else:
            check(isinstance(value, float) and 0.0 <= value <= 1.0, key,
                  f"must be a fraction of the units left in [0, 1] (float) or a count (int); got {value!r}")

    def units(self, left: int, where: str) -> int:
        """How many of the `left` unpruned units of `where` to prune now."""
        if isinstance(self.target, int):
            k = self.target
        else:
            k = round(self.target * left) if self.rounding == "round" else int(self.target * left)
        if k > left:
            raise ObjectiveNotReachedError(f"amount: {where} has {left} units left; cannot prune {k} of them; the "
                                           f"model was left as it was")
        return k
