"""Latency-targeted presets.

`halp` (Shen et al., "Structural Pruning via Latency-Saliency Knapsack", NeurIPS 2022): coupled
channels in groups (8 here: oneDNN's AVX2 channel block; HALP used 32/64 on GPU) scored by
Taylor importance, a 0/1 knapsack maximising the importance kept under the latency budget of a
per-layer latency table measured on this machine, the budget decaying geometrically
(b_k = b_0·(b_f/b_0)^(k/K)) over 30 pruning steps.

`netadapt` (Yang et al., ECCV 2018): the `netadapt` allocator's greedy rounds against the same
latency table, channels dropped by smallest L2 norm, each proposal judged by evaluate().
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

register_preset(
    "netadapt", "rounds of one proposal per layer (drop its smallest-L2 channels until the latency table says the "
    "round's step is saved), the best by evaluate() kept; step 2.5% of dense, x0.96 per round",
    "NetAdapt (Yang et al., ECCV 2018)",
    {"target": {"name": "channel", "round_to": 8}, "metric": "l2", "allocator": "netadapt", "scheduler": "one-pass",
     "objective": {"name": "latency-table", "target": 0.5}},
    {"budget": "objective.target", "resource_reduction": "allocator.step", "reduction_decay": "allocator.decay",
     "group_size": "target.round_to"})
