"""Presets in Torch-Pruning's style (Fang et al., "DepGraph: Towards Any Structural Pruning",
CVPR 2023; torch-pruning 1.6): coupled channel groups found by the dependency graph, scored as a
group (every member's slices; for l1 each tensor normalised by its mean, for taylor and hessian the
plain sum, which ranks a layer's channels as Torch-Pruning does; with `global_pruning` Torch-Pruning
also divides each layer's scores by their mean, which ours leaves out for these loss-change
estimates so that they compare across layers), `pruning_ratio` a fraction of
each layer's channels (`global_pruning` ranks all groups together), `iterative_steps` rounds of
(i/N)·ratio. Importances: group_l1 Σ|w|, group_taylor |w·g|, group_hessian ½w²E[g²] (OBD), lamp
w² / Σ_{v ≥ u} w_v² ranked globally (Lee et al., ICLR 2021).
"""
from __future__ import annotations

from ..errors import ConfigError
from . import register_preset

ORIGIN = "Torch-Pruning 1.6 (torch_pruning.pruner.MetaPruner)"


def global_pruning(value) -> dict:
    if not isinstance(value, bool):
        raise ConfigError(f"global_pruning: must be True or False; got {value!r}")
    return {"allocator.name": "global" if value else "uniform"}


def iterative_steps(value) -> dict:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"iterative_steps: must be a positive integer; got {value!r}")
    return {"scheduler": "one-pass" if value == 1 else {"name": "linear", "rounds": value}}


OPTIONS = {
    "pruning_ratio": "objective.target",
    "global_pruning": global_pruning,
    "iterative_steps": iterative_steps,
    "round_to": "target.round_to",
    "max_pruning_ratio": "allocator.max_ratio",
    "ignored_layers": "exclude",
}
BASE = {"target": "channel", "allocator": {"name": "uniform"}, "scheduler": "one-pass",
        "objective": {"name": "sparsity", "target": 0.5}}

for _name, _metric, _formula, _importance in (
    ("group_l1", "l1", "Σ|w| over the group", "GroupMagnitudeImportance(p=1)"),
    ("group_taylor", "taylor", "|w·g| over the group (data and loss_fn)", "GroupTaylorImportance"),
    ("group_hessian", "hessian", "½w²E[g²] over the group (data and loss_fn)", "GroupHessianImportance"),
):
    register_preset(f"tp.{_name}", f"coupled channel groups by {_formula}, pruning_ratio of each layer's channels",
                    f"{ORIGIN}, {_importance}", {**BASE, "metric": _metric}, OPTIONS)
register_preset("tp.lamp", "coupled channel groups by LAMP scores of their L2 norms, one global threshold",
                f"{ORIGIN}, LAMPImportance", {**BASE, "metric": "l2", "allocator": {"name": "lamp"}},
                {k: v for k, v in OPTIONS.items() if k != "global_pruning"})
