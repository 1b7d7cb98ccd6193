"""Measured latency: warm-up, then the median of N timed runs with its spread.

On CPU with a fixed thread count and wall-clock timing; on CUDA (a model whose parameters are
on a GPU) with CUDA events around each run and a synchronisation before reading them.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
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
    round_medians_ms: tuple[float, ...] = field(default=(), repr=False)

    def ratio_to(self, reference: "Latency") -> float:
        """This latency over `reference`'s, paired by round: the median over the rounds of
        compare_latency of the two medians' ratio, so that drift between rounds cancels."""
        if not self.round_medians_ms or len(self.round_medians_ms) != len(reference.round_medians_ms):
            raise ValueError("ratio_to needs two results of the same compare_latency call "
                             f"(rounds: {len(self.round_medians_ms)} and {len(reference.round_medians_ms)})")
        return statistics.median(a / b for a, b in zip(self.round_medians_ms, reference.round_medians_ms))

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}, n={self.runs}, {self.threads} threads)"


def _summary(rounds: list[list[float]]) -> Latency:
    times = [t for round_times in rounds for t in round_times]
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return Latency(statistics.median(times), q[0], q[-1], len(times), torch.get_num_threads(),
                   tuple(statistics.median(r) for r in rounds))


def model_device(model: nn.Module) -> torch.device:
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def _timed_runs(model: nn.Module, args: tuple, kwargs: dict, runs: int, warmup: int) -> list[float]:
    times = []
    cuda = model_device(model).type == "cuda"
    with torch.inference_mode(), eval_mode(model):
        for i in range(warmup + runs):
            if cuda:
                start_event = torch.cuda.Event(enable_timing=True)
                end_event = torch.cuda.Event(enable_timing=True)
                start_event.record()
                model(*args, **kwargs)
                end_event.record()
                torch.cuda.synchronize()
                elapsed = start_event.elapsed_time(end_event)
            else:
                start = time.perf_counter()
                model(*args, **kwargs)
                elapsed = (time.perf_counter() - start) * 1000.0
            if i >= warmup:
                times.append(elapsed)
    return times


def measure_latency(
    model: nn.Module, example_inputs: Any, *, runs: int = 30, warmup: int = 5, threads: Optional[int] = None
) -> Latency:
    """Median wall time of an eval-mode, no-grad forward on `example_inputs`."""
    return compare_latency({"model": model}, example_inputs, rounds=1, runs=runs, warmup=warmup,
                           threads=threads)["model"]


def compare_latency(
    models: dict[str, nn.Module], example_inputs: Any, *, rounds: int = 5, runs: int = 10, warmup: int = 3,
    threads: Optional[int] = None,
) -> dict[str, Latency]:
    """Latency of several models measured in interleaved rounds, so that drift of a shared
    machine hits all of them alike; each result pools the runs of every round and keeps each
    round's median, for `Latency.ratio_to`."""
    args, kwargs = normalize_inputs(example_inputs)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        times: dict[str, list[list[float]]] = {name: [] for name in models}
        for _ in range(rounds):
            for name, model in models.items():
                times[name].append(_timed_runs(model, args, kwargs, runs, warmup))
        return {name: _summary(t) for name, t in times.items()}
    finally:
        torch.set_num_threads(previous)
