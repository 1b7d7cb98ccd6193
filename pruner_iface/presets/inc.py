"""Presets reproducing Intel Neural Compressor's training-time pruning (neural_compressor 2.x
``WeightPruningConfig``), driven by the training-loop hooks exactly as INC's callbacks are:
on_train_begin, on_step_begin, on_before_optimizer_step, on_after_optimizer_step, on_train_end.

Defaults are INC's: target_sparsity 0.9, pattern 4x1, start/end step 0/0 (one-shot), global
scope, frequency 1, per-op sparsity 0.0–0.98, exp decay, Conv and Linear ops. Steps follow INC:
prune at start ≤ step ≤ end with (step − start) % frequency == 0, the k-th prune at the decay
curve's value for k/K, K = (end − start + frequency)//frequency − 1:
  exp  s = 1 − (1 − s_i)·((1 − s_f)/(1 − s_i))^(k/K)    cos  s = s_i + (s_f − s_i)(1 − cos(πk/2K))
  cube s = s_i + (s_f − s_i)(k/K)³                      linear s = s_i + (s_f − s_i)·k/K
Criteria: magnitude |W|; gradient |G|; snip |W⊙G|; snip_momentum S ← 0.9·S + |W⊙G| at every
optimizer step (INC's code; its README swaps the coefficients). Block scores are the mean over
the block (INC's default reduction). INC's snip scores the latest step; ours averages |W⊙G|
over the steps since the last prune (the same criterion, less noise).

Patterns: "NxM" blocks (N along the output rows, M along the inputs; conv weights viewed as
[out, kh·kw·in]); "channelx1" whole output rows, "1xchannel" whole input columns; "N:M" prunes
N of every M consecutive inputs (INC's convention; our n:m target keeps M − N). INC silently
skips a layer the pattern does not divide; ours raises naming the layer.
"""
from __future__ import annotations

import re

from ..errors import ConfigError
from . import register_preset

ORIGIN = "Intel Neural Compressor 2.x (neural_compressor.training.WeightPruningConfig)"


def pattern_target(pattern) -> dict:
    """INC's pattern string as a target spec."""
    text = str(pattern).strip()
    if text == "channelx1":
        return {"name": "channel-local", "dim": 0}
    if text == "1xchannel":
        return {"name": "channel-local", "dim": 1}
    nxm = re.fullmatch(r"(\d+)x(\d+)", text)
    if nxm and int(nxm[1]) >= 1 and int(nxm[2]) >= 1:
        n, m = int(nxm[1]), int(nxm[2])
        return {"name": "element"} if (n, m) == (1, 1) else {"name": "block", "block": [n, m]}
    nm = re.fullmatch(r"(\d+):(\d+)", text)
    if nm and 0 < int(nm[1]) < int(nm[2]):
        pruned, group = int(nm[1]), int(nm[2])
        return {"name": "n:m", "n": group - pruned, "m": group}
    raise ConfigError(f"pattern: {pattern!r} is not an INC pattern; allowed: 'NxM' (e.g. '4x1', '1x1'), "
                      f"'N:M' with N < M (prune N of every M, e.g. '2:4'), 'channelx1', '1xchannel'")


def op_types(types) -> list[str]:
    """INC's pruning_op_types ("Conv", "Linear", or torch class names) as module class names."""
    names = [types] if isinstance(types, str) else list(types)
    out = []
    for name in names:
        out += ["Conv1d", "Conv2d", "Conv3d"] if name == "Conv" else [name]
    return out


def scope_allocator(scope) -> str:
    if scope not in ("global", "local"):
        raise ConfigError(f"pruning_scope: {scope!r} is not 'global' (one threshold over all ops) or 'local' "
                          f"(the same sparsity in every op)")
    return "global" if scope == "global" else "uniform"


OPTIONS = {
    "target_sparsity": "objective.target",
    "pattern": lambda value: {"target": pattern_target(value)},  # first: the options below refine it
    "pruning_op_types": lambda value: {"target.module_types": op_types(value)},
    "pruning_scope": lambda value: {"allocator.name": scope_allocator(value)},
    "min_sparsity_ratio_per_op": "allocator.min_ratio",
    "max_sparsity_ratio_per_op": "allocator.max_ratio",
    "sparsity_decay_type": "scheduler.curve",
    "start_step": "scheduler.start",
    "end_step": "scheduler.end",
    "pruning_frequency": "scheduler.frequency",
    "op_names": "include",
    "excluded_op_names": "exclude",
}


def config(metric, training=None) -> dict:
    out = {"target": {"name": "block", "block": [4, 1]},
           "metric": {**metric, "reduce": "mean"},
           "allocator": {"name": "global", "max_ratio": 0.98},
           "scheduler": {"name": "decay", "curve": "exp", "start": 0, "end": 0, "frequency": 1},
           "objective": {"name": "sparsity", "target": 0.9}}
    if training:
        out["training"] = training
    return out


CRITERIA = {
    "snip_momentum": ({"name": "snip_momentum", "momentum": 0.9}, "S ← 0.9·S + |W⊙G| at every optimizer step"),
    "magnitude": ({"name": "l1"}, "|W|"),
    "gradient": ({"name": "gradient"}, "|G| averaged over the steps since the last prune"),
    "snip": ({"name": "taylor"}, "|W⊙G| averaged over the steps since the last prune"),
}
for _name, (_metric, _formula) in CRITERIA.items():
    register_preset(f"inc.{_name}", f"{_formula}; 4x1 blocks, global, exp decay, 90%", f"{ORIGIN}: {_name}",
                    config(_metric), OPTIONS)
    register_preset(f"inc.{_name}_progressive",
                    f"{_formula}; each new block zeroed over 4 sub-steps in score order (needs frequency >= 4 "
                    f"and end - start > 4, else prunes at once, as INC)", f"{ORIGIN}: {_name}_progressive",
                    config(_metric, ["progressive"]), OPTIONS)

LOCK_OPTIONS = {k: OPTIONS[k] for k in ("pruning_op_types", "op_names", "excluded_op_names")}
register_preset(
    "inc.pattern_lock", "keeps the zeros the model has at on_train_begin: mask = (W != 0), re-applied after "
    "every optimizer step; prunes nothing more", f"{ORIGIN}: pattern_lock",
    {**config({"name": "l1"}, ["pattern_lock"]), "target": {"name": "element"},
     "objective": {"name": "sparsity", "target": 0.0}}, LOCK_OPTIONS)
register_preset(
    "inc.group_lasso", "α·Σ_g ‖W_g‖₂ over 1x2 tiles (gradient α·W_g/‖W_g‖₂ added before each optimizer "
    "step, INC v1's rule; α 0.006 as INC's recipes), magnitude criterion, global, exp decay, 90%",
    f"{ORIGIN}: group_lasso (INC v1 GroupLasso pruner)",
    {**config({"name": "l1"}, [{"name": "group_lasso", "alpha": 0.006}]),
     "target": {"name": "block", "block": [1, 2]}},
    {**OPTIONS, "alpha": "training.group_lasso.alpha"})
