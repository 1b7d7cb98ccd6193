"""Fast exact selection of the k lowest scores (numpy's introselect beats torch.kthvalue on CPU)."""
from __future__ import annotations

import numpy as np
import torch


def kth_smallest(values: torch.Tensor, k: int, scratch: bool = False) -> float:
    """The k-th smallest value (1-based) of a flat tensor.

    With ``scratch=True`` the caller gives up `values` (a buffer it owns): it is partitioned in
    place, which avoids a copy (0.15 s instead of 0.6 s for 100M floats on 2 cores).
    """
    n = values.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k={k} out of range for {n} values")
    if values.device.type == "cpu":
        arr = values.detach().reshape(-1)
        if arr.dtype not in (torch.float32, torch.float64):
            arr, scratch = arr.float(), True
        if scratch and arr.is_contiguous():
            buf = arr.numpy()
            buf.partition(k - 1)
            return float(buf[k - 1])
        return float(np.partition(arr.numpy(), k - 1)[k - 1])
    return float(torch.kthvalue(values.detach().reshape(-1).float(), k).values)


def lowest_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of exactly `k` lowest entries of a flat tensor; ties go to the lowest index."""
    n = scores.numel()
    k = max(0, min(int(k), n))
    if k == 0:
        return torch.zeros(n, dtype=torch.bool, device=scores.device)
    if k == n:
        return torch.ones(n, dtype=torch.bool, device=scores.device)
    t = kth_smallest(scores, k)
    chosen = scores < t
    missing = k - int(torch.count_nonzero(chosen))
    if missing > 0:
        ties = (scores == t).nonzero().reshape(-1)[:missing]
        chosen[ties] = True
    return chosen


def torch_lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the `k` lowest entries of a flat tensor exactly as ``torch.topk(largest=False)``
    picks them (ties included), so that masks can match torch.nn.utils.prune bit for bit."""
    if k <= 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    return torch.topk(scores, k=k, largest=False).indices
