"""Allocators: how much to prune where. Import registers every built-in allocator."""
from .base import ALLOCATORS, Allocator, Proposal, register_allocator
from . import global_threshold, uniform  # noqa: F401  (registration)

__all__ = ["ALLOCATORS", "Allocator", "Proposal", "register_allocator"]
