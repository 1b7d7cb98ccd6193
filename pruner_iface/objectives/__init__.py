"""Objectives: what the user wants. Import registers every built-in objective."""
from .base import OBJECTIVES, Objective, register_objective
from . import flops, latency, latency_table, params, sparsity  # noqa: F401  (registration)

__all__ = ["OBJECTIVES", "Objective", "register_objective"]
