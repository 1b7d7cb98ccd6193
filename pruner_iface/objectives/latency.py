"""`latency`: measured latency of one forward on the example inputs, as a fraction of the dense
model's (absolute: milliseconds).

A candidate is measured on a physically shrunk copy (the target's speed_up), interleaved with a
copy of the dense model taken at bind, so that drift of a shared machine hits both alike: the
value is the median over rounds of each round's ratio of medians (`Latency.ratio_to`). On CPU
with a fixed thread count; on CUDA with CUDA events.
The search predicts latency from FLOPs (cost model: FLOPs savings); the loop then measures and
corrects its aim until the measurement meets the budget within `tolerance`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..inputs import normalize_inputs
from ..latency import compare_latency, model_device
from ..registry import check
from .base import Objective, register_objective
from .flops import Flops


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    return value


@register_objective("latency")
@dataclass
class Latency(Objective):
    device: str = "cpu"             # where to time: "cpu" or "cuda" (copies are moved there)
    threads: Optional[int] = None   # CPU threads while timing; default: torch's current setting
    runs: int = 10                  # timed runs per round and model
    rounds: int = 5                 # interleaved rounds (dense, candidate, dense, ...)
    warmup: int = 3
    checks: int = 8                 # most candidates measured per step before giving up

    unit: ClassVar[str] = "ms"
    verify: ClassVar[bool] = True
    needs_speed_up: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check(self.device in ("cpu", "cuda"), "device", f"must be 'cpu' or 'cuda'; got {self.device!r}")
        check(self.device != "cuda" or torch.cuda.is_available(), "device",
              "'cuda' was asked but this machine has no CUDA device (torch.cuda.is_available() is False)")
        check(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1), "threads",
              f"must be a positive integer or None; got {self.threads!r}")
        for key in ("runs", "rounds", "checks"):
            value = getattr(self, key)
            check(isinstance(value, int) and value >= 1, key, f"must be a positive integer; got {value!r}")
        check(isinstance(self.warmup, int) and self.warmup >= 0, "warmup", f"must be an integer >= 0; got {self.warmup!r}")
        super().__post_init__()
        self.last_detail: dict = {}

    def bind_dense(self, model, example_inputs, layers):
        args, kwargs = normalize_inputs(example_inputs)
        if not args and not kwargs:
            raise ConfigError("the latency objective needs example inputs to time the model; got none")
        self._inputs = _to(example_inputs, self.device)
        self._proxy = Flops(target=1.0)
        self._proxy.bind_dense(model, example_inputs, layers)
        self._dense = copy.deepcopy(model).eval().to(self.device)
        dense = compare_latency({"dense": self._dense}, self._inputs, rounds=self.rounds, runs=self.runs,
                                warmup=self.warmup, threads=self.threads)["dense"]
        self.dense_ms = dense.median_ms
        self.dense_spread = (dense.p10_ms, dense.p90_ms)

    def dense_absolute(self):
        return self.dense_ms

    def estimate(self, layers, pruned):
        return self._proxy.estimate(layers, pruned)

    def savings(self, layers):
        return self._proxy.savings(layers)

    def measure(self, model: nn.Module) -> float:
        """Latency of `model` over the dense copy's, measured in interleaved rounds; the medians
        and spreads are kept in `last_detail`. A model on another device is timed as a copy."""
        timed = model if model_device(model).type == self.device else copy.deepcopy(model).to(self.device)
        result = compare_latency({"dense": self._dense, "model": timed}, self._inputs, rounds=self.rounds,
                                 runs=self.runs, warmup=self.warmup, threads=self.threads)
        dense, ours = result["dense"], result["model"]
        self.last_detail = {"dense_ms": dense.median_ms, "dense_p10_ms": dense.p10_ms, "dense_p90_ms": dense.p90_ms,
                            "ms": ours.median_ms, "p10_ms": ours.p10_ms, "p90_ms": ours.p90_ms}
        return ours.ratio_to(dense)
