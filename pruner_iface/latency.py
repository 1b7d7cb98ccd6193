"""Measured CPU latency: fixed thread count, warm-up, median of N timed runs with its spread."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from .inputs import eval_mode, normalize_inputs


@dataclass
class Latency:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    threads: int

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}, n={self.runs}, {self.threads} threads)"


def measure_latency(
    model: nn.Module, example_inputs: Any, *, runs: int = 30, warmup: int = 5, threads: Optional[int] = None
) -> Latency:
    """Median wall time of an eval-mode, no-grad forward on `example_inputs`."""
    args, kwargs = normalize_inputs(example_inputs)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        times = []
        with torch.inference_mode(), eval_mode(model):
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(*args, **kwargs)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000.0)
        times.sort()
        q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
        return Latency(statistics.median(times), q[0], q[-1], runs, torch.get_num_threads())
    finally:
        torch.set_num_threads(previous)
