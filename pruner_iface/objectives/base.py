"""Objective: what the user wants, and whether a set of pruned units meets it.

`target` for `sparsity` is the fraction of the target's units removed (weights for `element` and
`n:m`, blocks for `block`, rows for `channel-local`); for budgets (`params`, `flops`, `latency`,
`latency-table`) it is the fraction of the dense value that may remain (0.5 keeps at most half).
A budget may instead be `absolute`, in the objective's `unit` (parameters, GFLOPs, ms); `bind`
turns it into the fraction of the dense model's value.

Every objective predicts its value for candidate pruned-unit sets without touching the model
(`estimate`, what the allocation search uses), measures the true value of a model (`measure`)
and offers a cost model (`savings`: what pruning k units of one layer saves) for allocators that
trade importance against cost. Where the prediction can differ from the truth (latency), the
loop re-measures a candidate and corrects its aim until the truth meets the target (`verify`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry, check
from ..targets.base import TargetLayer


@dataclass
class Objective(ABC):
    target: Optional[float] = None
    absolute: Optional[float] = None  # a budget in `unit` instead of a fraction of dense
    precision: float = 1e-3  # the search may stop when it overshoots the target by at most this
    tolerance: float = 0.02  # a verified (measured) value may exceed its target by this fraction of it

    removes: ClassVar[bool] = False  # True: the value measures what was removed (sparsity); False: what remains
    unit: ClassVar[str] = ""         # unit of `absolute`; empty: no absolute form
    verify: ClassVar[bool] = False   # True: estimates are predictions; candidates are measured before use
    needs_speed_up: ClassVar[bool] = False  # measured on the physically shrunk model
    exact: ClassVar[bool] = False    # met by one exact allocation (the allocator's allocate_exact), no search

    def __post_init__(self) -> None:
        if self.absolute is not None:
            check(bool(self.unit), "absolute", f"the {self._name} objective has no absolute form; use target")
            check(self.target is None, "absolute", "give either target (fraction of dense) or absolute, not both")
            check(isinstance(self.absolute, (int, float)) and not isinstance(self.absolute, bool)
                  and self.absolute > 0, "absolute", f"must be a positive number of {self.unit}; got {self.absolute!r}")
        else:
            check(self.target is not None, "target",
                  "is required (e.g. {'name': 'flops', 'target': 0.5})"
                  + (f", or absolute in {self.unit}" if self.unit else ""))
            self.check_value(self.target, "target")
        check(isinstance(self.precision, (int, float)) and 0.0 <= self.precision <= 0.1, "precision",
              f"must be in [0, 0.1] (amount pruned); got {self.precision!r}")
        check(isinstance(self.tolerance, (int, float)) and 0.0 <= self.tolerance <= 0.5, "tolerance",
              f"must be in [0, 0.5] (fraction of the target); got {self.tolerance!r}")

    @property
    def _name(self) -> str:
        return getattr(self, "registered_name", type(self).__name__)

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

    def within_tolerance(self, value: float, target: float) -> bool:
        """Whether a measured value meets `target` allowing `tolerance` (measurements are noisy)."""
        return self.achieved(value, target * (1.0 - self.tolerance) if self.removes else target * (1.0 + self.tolerance))

    # --- binding -------------------------------------------------------------------------
    def bind(self, model: nn.Module, example_inputs: Any, layers: list[TargetLayer]) -> None:
        """Take the dense measurements (called once by the Pruner); resolve `absolute`."""
        self.bind_dense(model, example_inputs, layers)
        if self.absolute is not None:
            dense = self.dense_absolute()
            if self.absolute > dense:
                raise ConfigError(f"objective.absolute: {self.absolute:.6g} {self.unit} is above the dense model's "
                                  f"{dense:.6g} {self.unit}; nothing needs pruning")
            self.target = self.absolute / dense

    def bind_dense(self, model: nn.Module, example_inputs: Any, layers: list[TargetLayer]) -> None:
        """Measure what the objective needs of the dense model."""

    def dense_absolute(self) -> float:
        """The dense model's value in `unit` (for objectives with an absolute form)."""
        raise ConfigError(f"the {self._name} objective has no absolute form")

    # --- values --------------------------------------------------------------------------
    @abstractmethod
    def estimate(self, layers: list[TargetLayer], pruned: list[torch.Tensor]) -> float:
        """The objective's predicted value if exactly the `pruned` units of each layer were removed."""

    def measure(self, model: nn.Module) -> float:
        """The true value of `model` (masked, or shrunk for `needs_speed_up`), as :meth:`estimate`'s."""
        raise ConfigError(f"the {self._name} objective is measured from the target's units only")

    def savings(self, layers: list[TargetLayer]) -> list[np.ndarray]:
        """Cost model: ``savings(layers)[i][k]`` is how much pruning k more units of layer i alone
        (the others as they are) lowers the value, for k = 0 .. units left. This default is
        linear: a unit saves what the layer's first half of remaining units saves, per unit."""
        current = [layer.current_pruned() for layer in layers]
        base = self.estimate(layers, current)
        out = []
        for i, layer in enumerate(layers):
            free = (~current[i]).nonzero().reshape(-1)
            half = max(1, len(free) // 2)
            trial = list(current)
            trial[i] = current[i].clone()
            trial[i][free[:half]] = True
            per_unit = abs(base - self.estimate(layers, trial)) / half if len(free) else 0.0
            out.append(per_unit * np.arange(len(free) + 1, dtype=np.float64))
        return out


OBJECTIVES: Registry[Objective] = Registry("objective", Objective)
register_objective = OBJECTIVES.register
