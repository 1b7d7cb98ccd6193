"""Allocators: how much to prune where. Import registers every built-in allocator."""
from .base import ALLOCATORS, AllocationContext, Allocator, Proposal, register_allocator
from . import annealing, erk, global_threshold, knapsack, lamp, sensitivity, uniform  # noqa: F401  (registration)

__all__ = ["ALLOCATORS", "AllocationContext", "Allocator", "Proposal", "register_allocator"]
