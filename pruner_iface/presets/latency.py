"""Latency-targeted presets.

`halp` (Shen et al., "Structural Pruning via Latency-Saliency Knapsack", NeurIPS 2022): coupled
channels in groups (8 here: oneDNN's AVX2 channel block; HALP used 32/64 on GPU) scored by
Taylor importance, a 0/1 knapsack maximising the importance kept under the latency budget of a
per-layer latency table measured on this machine, the budget decaying geometrically
(b_k = b_0·(b_f/b_0)^(k/K)) over 30 pruning steps.
"""
from __future__ import annotations

from . import register_preset

register_preset(
    "halp", "Taylor-scored channel groups of 8 chosen by a knapsack under a latency-table budget, 30 steps of "
    "geometric decay (data, loss_fn and the training-loop hooks)",
    "HALP (Shen et al., NeurIPS 2022)",
    {"target": {"name": "channel", "round_to": 8}, "metric": "taylor", "allocator": "knapsack",
     "scheduler": {"name": "decay", "curve": "exp", "rounds": 30}, "objective": {"name": "latency-table", "target": 0.5}},
    {"latency": "objective.target", "pruning_steps": "scheduler.rounds", "interval": "scheduler.frequency",
     "group_size": "target.round_to"})
