"""Presets reproducing Intel Extension for Transformers' pruning (``intel_extension_for_transformers
.transformers.PrunerConfig``, INC v1 pruners underneath). Steps are epochs: call
``on_step_begin(epoch)`` at each epoch start. Defaults are ITREX's: epoch_range [0, 4],
initial_sparsity_ratio 0.0, target_sparsity_ratio 0.97, update_frequency 1, method per_tensor
(every weight to the same sparsity; per_channel compares weights within each output row).

Schedule (INC v1 magnitude pruner): at epoch e of the range, s = s_i + (s_f − s_i)·(e − start)/(end
− start), pruning every update_frequency epochs — the `linear` scheduler.
"""
from __future__ import annotations

from ..errors import ConfigError
from . import register_preset

ORIGIN = "Intel Extension for Transformers (PrunerConfig, prune_type"


def epoch_range(value) -> dict:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise ConfigError(f"epoch_range: must be [start_epoch, end_epoch] integers; got {value!r}")
    return {"scheduler.start": value[0], "scheduler.end": value[1]}


def method(value) -> dict:
    if value not in ("per_tensor", "per_channel"):
        raise ConfigError(f"method: {value!r} is not 'per_tensor' or 'per_channel'")
    return {"target.scope": "layer" if value == "per_tensor" else "row"}


OPTIONS = {
    "epoch_range": epoch_range,
    "initial_sparsity_ratio": "scheduler.initial",
    "target_sparsity_ratio": "objective.target",
    "update_frequency": "scheduler.frequency",
    "names": "include",
    "method": method,
}
BASE = {"target": {"name": "element", "scope": "layer"}, "metric": "l1", "allocator": "uniform",
        "scheduler": {"name": "linear", "start": 0, "end": 4, "frequency": 1, "initial": 0.0},
        "objective": {"name": "sparsity", "target": 0.97}}

register_preset("itrex.basic_magnitude", "|W| per tensor, linear over epochs 0-4 to 97%", f"{ORIGIN} BasicMagnitude)",
                BASE, OPTIONS)
register_preset("itrex.pattern_lock", "keeps the zeros present at on_train_begin; prunes nothing more",
                f"{ORIGIN} PatternLock)", {**BASE, "objective": {"name": "sparsity", "target": 0.0},
                                          "scheduler": "one-pass", "training": ["pattern_lock"]},
                {"names": "include"})
register_preset("itrex.group_lasso", "α·Σ_g ‖W_g‖₂ over 1x2 tiles (INC v1 rule) with magnitude pruning of the "
                "tiles, linear over epochs 0-4 to 97%", f"{ORIGIN} GroupLasso)",
                {**BASE, "target": {"name": "block", "block": [1, 2]},
                 "training": [{"name": "group_lasso", "alpha": 0.006}]},
                {**{k: v for k, v in OPTIONS.items() if k != "method"}, "alpha": "training.group_lasso.alpha"})
