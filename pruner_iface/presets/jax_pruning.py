"""`jax.strategy`: a jax_pruning strategy dict taken as it is —
``{epoch: {"method": ..., "prune_rate_pattern": ...}}`` with **densities** (0.9 keeps 90%):

- ``unstr_global``: unstructured, one threshold over all layers, pattern a density;
- ``unstr_unified_local``: unstructured, the same density in every layer;
- ``unstr_local``: unstructured, a density per layer ``{"fc1-kernel": 0.3, ...}`` (only those
  layers are pruned; keys are the model's module names, a ``-kernel`` suffix — Flax's name for
  a weight — is accepted);
- ``str_unified_local``: N:M in every layer, pattern ``(n, m)`` keeping n of every m.

Several epochs give a table schedule of the epochs' sparsities (1 − density); call
``on_step_begin(epoch)`` at each epoch. Every epoch must use the same method.
"""
from __future__ import annotations

import re

from ..errors import ConfigError
from . import register_preset

METHODS = ("unstr_global", "unstr_unified_local", "unstr_local", "str_unified_local")


def _density(value, where: str) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= 1.0):
        raise ConfigError(f"{where}: a density must be in (0, 1] (the fraction kept); got {value!r}")
    return float(value)


def strategy(value) -> dict:
    """The strategy dict as target, allocator, scheduler, objective (and include for unstr_local)."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"strategy: must be a non-empty {{epoch: {{'method': ..., 'prune_rate_pattern': ...}}}} "
                          f"dict; got {value!r}")
    epochs = {}
    for epoch, spec in value.items():
        where = f"strategy[{epoch!r}]"
        if not (isinstance(epoch, int) and epoch >= 0):
            raise ConfigError(f"{where}: epochs must be non-negative integers")
        if not isinstance(spec, dict) or set(spec) != {"method", "prune_rate_pattern"}:
            raise ConfigError(f"{where}: must be {{'method': ..., 'prune_rate_pattern': ...}}; got {spec!r}")
        if spec["method"] not in METHODS:
            raise ConfigError(f"{where}.method: {spec['method']!r} is not one of {', '.join(METHODS)}")
        epochs[epoch] = spec
    methods = {spec["method"] for spec in epochs.values()}
    if len(methods) > 1:
        raise ConfigError(f"strategy: every epoch must use the same method; got {sorted(methods)}")
    method = methods.pop()
    last = max(epochs)
    pattern = epochs[last]["prune_rate_pattern"]
    if method == "str_unified_local":
        if len(epochs) > 1:
            raise ConfigError("strategy: an N:M pattern is one step; give a single epoch")
        if not (isinstance(pattern, (list, tuple)) and len(pattern) == 2 and all(isinstance(v, int) for v in pattern)
                and 0 < pattern[0] < pattern[1]):
            raise ConfigError(f"strategy[{last}].prune_rate_pattern: str_unified_local takes (n, m) keeping n of "
                              f"every m, 0 < n < m; got {pattern!r}")
        n, m = pattern
        return {"target": {"name": "n:m", "n": n, "m": m}, "allocator": "uniform", "scheduler": {"name": "one-pass", "start": last},
                "objective": {"name": "sparsity", "target": 1.0 - n / m}}
    if method == "unstr_local":
        if len(epochs) > 1:
            raise ConfigError("strategy: unstr_local's per-layer densities are one step; give a single epoch")
        if not isinstance(pattern, dict) or not pattern:
            raise ConfigError(f"strategy[{last}].prune_rate_pattern: unstr_local takes {{layer name: density}}; "
                              f"got {pattern!r}")
        ratios = {re.escape(re.sub(r"-kernel$", "", str(k))): 1.0 - _density(d, f"strategy[{last}][{k!r}]")
                  for k, d in pattern.items()}
        pruned = [r for r in ratios.values() if r > 0] or [0.0]
        return {"target": "element", "include": list(ratios), "allocator": {"name": "uniform", "overrides": ratios},
                "scheduler": {"name": "one-pass", "start": last},
                # every layer's ratio is fixed; the objective is the least of them, met by construction
                "objective": {"name": "sparsity", "target": min(pruned)}}
    sparsities = {epoch: 1.0 - _density(spec["prune_rate_pattern"], f"strategy[{epoch}].prune_rate_pattern")
                  for epoch, spec in sorted(epochs.items())}
    scheduler = ({"name": "one-pass", "start": last} if len(sparsities) == 1
                 else {"name": "table", "table": sparsities})
    return {"target": "element", "allocator": "global" if method == "unstr_global" else "uniform",
            "scheduler": scheduler, "objective": {"name": "sparsity", "target": sparsities[last]}}


register_preset("jax.strategy", "a jax_pruning strategy {epoch: {method, prune_rate_pattern}} (densities); pass "
                "strategy=...", "jax_pruning strategy dicts (prune_rate_pattern is a density)",
                {"target": "element", "metric": "l1", "allocator": "global", "scheduler": "one-pass",
                 "objective": {"name": "sparsity", "target": 0.5}}, {"strategy": strategy})
