"""Fast exact selection of the k lowest scores (numpy's introselect beats torch.kthvalue on CPU)."""
from __future__ import annotations

import numpy as np
import torch


def kth_smallest(values: torch.Tensor, k: int) -> float:
    """The k-th smallest value (1-based) of a flat tensor."""
    n = values.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k={k} out of range for {n} values")
    if values.device.type == "cpu":
        arr = values.detach().reshape(-1)
        if arr.dtype != torch.float32 and arr.dtype != torch.float64:
            arr = arr.float()
        return float(np.partition(arr.numpy(), k - 1)[k - 1])
    return float(torch.kthvalue(values.detach().reshape(-1).float(), k).values)


def lowest_k(scores: torch.Tensor, k: int, threshold: float | None = None) -> torch.Tensor:
    """Bool mask of exactly `k` lowest entries of a flat tensor; ties go to the lowest index.

    `threshold`, when given, is a guess for the k-th smallest value (e.g. a global threshold);
    it is used when it selects exactly k entries, saving a selection pass.
    """
    n = scores.numel()
    k = max(0, min(int(k), n))
    if k == 0:
        return torch.zeros(n, dtype=torch.bool, device=scores.device)
    if k == n:
        return torch.ones(n, dtype=torch.bool, device=scores.device)
    if threshold is not None:
        chosen = scores <= threshold
        if int(chosen.sum()) == k:
            return chosen
    t = kth_smallest(scores, k)
    chosen = scores < t
    missing = k - int(chosen.sum())
    if missing > 0:
        ties = (scores == t).nonzero().reshape(-1)[:missing]
        chosen[ties] = True
    return chosen
