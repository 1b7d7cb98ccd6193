"""Objective: what the user wants, and whether a set of pruned units meets it.

`target` for `sparsity` is the fraction of the target's units removed (weights for `element` and
`n:m`, blocks for `block`, rows for `channel-local`); for budgets (`params`, `flops`) it is the
fraction of the dense value that may remain (0.5 keeps at most half).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from ..registry import Registry, check
from ..targets.base import TargetLayer


@dataclass
class Objective(ABC):
    target: Optional[float] = None
    precision: float = 1e-3  # the search may stop when it overshoots the target by at most this

    removes = False  # True: the value measures what was removed (sparsity); False: what remains

    def __post_init__(self) -> None:
        check(self.target is not None, "target", "is required (e.g. {'name': 'flops', 'target': 0.5})")
        self.check_value(self.target, "target")
        check(isinstance(self.precision, (int, float)) and 0.0 <= self.precision <= 0.1, "precision",
              f"must be in [0, 0.1] (amount pruned); got {self.precision!r}")

    @property
    def dense_value(self) -> float:
        return 0.0 if self.removes else 1.0

    def check_value(self, value: Any, key: str) -> None:
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.removes:
            check(ok_type and 0.0 <= value < 1.0, key, f"a sparsity must be in [0, 1); got {value!r}")
        else:
            check(ok_type and 0.0 < value <= 1.0, key,
                  f"a budget is a fraction of the dense value in (0, 1]; got {value!r}")

    def to_amount(self, value: float) -> float:
        """How much is pruned at this value (0 = dense)."""
        return value if self.removes else 1.0 - value

    def from_amount(self, amount: float) -> float:
        return amount if self.removes else 1.0 - amount

    def achieved(self, value: float, target: float) -> bool:
        return value >= target - 1e-9 if self.removes else value <= target + 1e-9

    def bind(self, model: nn.Module, example_inputs: Any, layers: list[TargetLayer]) -> None:
        """Take the dense measurements this objective needs (called once by the Pruner)."""

    @abstractmethod
    def measure(self, layers: list[TargetLayer], pruned: list[torch.Tensor]) -> float:
        """The objective's value if exactly the `pruned` units of each layer were removed."""


OBJECTIVES: Registry[Objective] = Registry("objective", Objective)
register_objective = OBJECTIVES.register
