"""`table`: an explicit {step: objective value} plan such as {10: 0.5, 20: 0.8}."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..registry import check
from .base import Scheduler, register_scheduler


@register_scheduler("table")
@dataclass
class Table(Scheduler):
    """Values are in the objective's own terms (sparsity, or budget fraction); the last must
    equal the objective's target. `start`/`end`/`frequency` are taken from the table."""

    table: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(isinstance(self.table, dict) and self.table, "table", "must be a non-empty {step: value} mapping")
        check(self.rounds is None, "rounds", "a table lists its steps; drop rounds")
        parsed = {}
        for key, value in self.table.items():
            try:
                step = int(key)
            except (TypeError, ValueError):
                raise ConfigError(f"table: step {key!r} is not an integer") from None
            check(step >= 0 and str(step) == str(key).strip(), "table", f"step {key!r} must be a non-negative integer")
            check(isinstance(value, (int, float)) and not isinstance(value, bool), f"table.{key}",
                  f"must be a number; got {value!r}")
            parsed[step] = float(value)
        self.table = dict(sorted(parsed.items()))
        self.start, self.end = min(self.table), max(self.table)
        super().__post_init__()

    def steps(self) -> list[int]:
        return list(self.table)

    def plan(self, objective):
        previous = objective.to_amount(objective.dense_value)
        for step, value in self.table.items():
            objective.check_value(value, f"scheduler.table.{step}")
            amount = objective.to_amount(value)
            check(amount >= previous - 1e-12, f"scheduler.table.{step}",
                  f"{value} prunes less than the step before; a table must move monotonically toward the target")
            previous = amount
        last = list(self.table.values())[-1]
        check(abs(last - objective.target) <= 1e-9, "scheduler.table",
              f"ends at {last} but the objective target is {objective.target}; make them equal")
        return list(self.table.items())
