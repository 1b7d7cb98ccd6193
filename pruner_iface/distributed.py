"""Statistics gathered over data agree across torch.distributed ranks, so every rank computes the
same masks: gradients are averaged after each backward (as DDP does, so a metric sees the
gradient of the union of the ranks' batches) and forward statistics are summed after a pass.

Each rank must see the same number of batches of the same size and reach the same modules;
pass the unwrapped model (not a DistributedDataParallel wrapper). Without an initialised
process group every function here does nothing.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def sum_across_ranks_(tensors: Iterable[torch.Tensor]) -> None:
    """Sum each tensor over the ranks, in place (in the same order on every rank)."""
    if world_size() > 1:
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def sum_counts(counts: list[int]) -> list[int]:
    """Integers summed over the ranks."""
    if world_size() == 1:
        return list(counts)
    total = torch.tensor(counts, dtype=torch.float64)
    sum_across_ranks_([total])
    return [int(round(v)) for v in total.tolist()]


def average_gradients_(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each existing ``.grad`` by its mean over the ranks."""
    size = world_size()
    if size > 1:
        for param in params:
            if param.grad is not None:
                dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
                param.grad.div_(size)
