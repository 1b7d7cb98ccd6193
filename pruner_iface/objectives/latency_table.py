"""`latency-table`: latency predicted from per-op latency tables, then measured.

Each Linear / ConvNd of the model is looked up in a :class:`~pruner_iface.latency_table.LatencyTable`
at its kept input and output channel counts; everything the table does not model (norms,
activations, attention products, Python overhead) is the dense remainder, scaled by the kept
fraction of FLOPs. The prediction drives the search and the cost model (a staircase per layer,
which `knapsack` uses); the loop then measures the shrunk candidate like `latency` and reports
the prediction's error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Union

import numpy as np
import torch

from ..accounting import layer_removals, removed_per_dim
from ..inputs import eval_mode, normalize_inputs
from ..latency_table import LatencyTable, default_cache_dir, signature_of
from ..registry import check
from .base import register_objective
from .latency import Latency


@register_objective("latency-table")
@dataclass
class LatencyTableObjective(Latency):
    cache: Union[str, bool, None] = True  # directory of the JSON tables; True: $PRUNER_IFACE_CACHE or ~/.cache/pruner_iface; False: memory only
    block: Optional[int] = None  # counts measured at multiples of this and one past; None: the CPU's (16 or 8)
    max_points: int = 16    # most multiples measured per axis (the step grows for wide ops)
    table_runs: int = 7     # timed runs per table point

    unit: ClassVar[str] = "ms"

    def __post_init__(self) -> None:
        check(isinstance(self.cache, (str, bool)) or self.cache is None, "cache",
              f"must be a directory path, True (default directory) or False (no file); got {self.cache!r}")
        for key in ("block", "max_points", "table_runs"):
            value = getattr(self, key)
            check((key == "block" and value is None) or (isinstance(value, int) and value >= 1), key,
                  f"must be a positive integer{' or None' if key == 'block' else ''}; got {value!r}")
        super().__post_init__()

    def bind_dense(self, model, example_inputs, layers):
        super().bind_dense(model, example_inputs, layers)
        calls: dict[int, list] = {}
        handles = []

        def record(module, inputs):
            if inputs and isinstance(inputs[0], torch.Tensor):
                calls.setdefault(id(module), [module, []])[1].append((tuple(inputs[0].shape), inputs[0].dtype))

        for module in model.modules():
            if signature_of(module, (1,), torch.float32) is not None:
                handles.append(module.register_forward_pre_hook(record))
        args, kwargs = normalize_inputs(example_inputs)
        try:
            with torch.no_grad(), eval_mode(model):
                model(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        ops = [(mid, module, signature_of(module, shape, dtype))
               for mid, (module, seen) in calls.items() for shape, dtype in seen]
        ops = [op for op in ops if op[2] is not None]
        cache = default_cache_dir() if self.cache is True else (None if self.cache in (False, None) else self.cache)
        self.table = LatencyTable(cache, self.device, self.threads, self.table_runs, self.warmup, self.block,
                                  self.max_points)
        curves = self.table.curves([sig for _, _, sig in ops])
        self._ops = [(mid, sig, c) for (mid, _, sig), c in zip(ops, curves)]
        self.table_dense_ms = float(sum(c.full_ms for _, _, c in self._ops))
        self.remainder_ms = self.dense_ms - self.table_dense_ms

    def _kept(self, removed: dict) -> list[tuple[float, float]]:
        kept = []
        for mid, sig, _ in self._ops:
            out = sig.out_channels - removed.get((mid, "weight", 0), (None, 0))[1]
            inp = out if sig.depthwise else sig.in_channels - removed.get((mid, "weight", 1), (None, 0))[1]
            kept.append((inp, out))
        return kept

    def predict_ms(self, layers, pruned) -> float:
        """Predicted latency (ms) with exactly the `pruned` units removed."""
        removed = removed_per_dim(layer_removals(layers, pruned))
        ops = sum(float(c.predict(i, o)) for (_, _, c), (i, o) in zip(self._ops, self._kept(removed)))
        return ops + self.remainder_ms * self._proxy.estimate(layers, pruned)

    def estimate(self, layers, pruned):
        return self.predict_ms(layers, pruned) / self.dense_ms

    def savings(self, layers):
        """Per layer, the predicted saving of pruning k more units (a staircase where the table
        has one), as a fraction of dense latency."""
        current = [layer.current_pruned() for layer in layers]
        base = self._kept(removed_per_dim(layer_removals(layers, current)))
        flops = self._proxy.savings(layers)
        out = []
        for layer, done, proxy in zip(layers, current, flops):
            free = (~done).nonzero().reshape(-1)
            k = np.arange(len(free) + 1, dtype=np.float64)
            saved = self.remainder_ms * proxy
            if len(free):
                one = torch.zeros_like(done)
                one[free[0]] = True
                per_unit = removed_per_dim(layer.removals(one))
                for (mid, sig, c), (i, o) in zip(self._ops, base):
                    d_out = per_unit.get((mid, "weight", 0), (None, 0))[1]
                    d_in = d_out if sig.depthwise else per_unit.get((mid, "weight", 1), (None, 0))[1]
                    if d_in or d_out:
                        kept_in, kept_out = np.maximum(i - k * d_in, 1), np.maximum(o - k * d_out, 1)
                        saved = saved + (float(c.predict(i, o)) - c.predict(kept_in, kept_out))
            out.append(np.asarray(saved, dtype=np.float64) / self.dense_ms)
        return out
