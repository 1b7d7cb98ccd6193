"""Allocators: how much to prune where. Import registers every built-in allocator."""
from .base import ALLOCATORS, AllocationContext, Allocator, Proposal, register_allocator
from ..registry import import_parts

import_parts(__name__, __path__)  # every module of this package registers its parts

__all__ = ["ALLOCATORS", "AllocationContext", "Allocator", "Proposal", "register_allocator"]
