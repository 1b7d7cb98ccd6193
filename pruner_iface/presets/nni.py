"""Presets reproducing NNI's pruners (Microsoft NNI 3.0, nni.compression.pruning; the
iterative and search pruners as NNI 2.x defined them).

One-shot pruners:
Each prunes every selected Linear/ConvNd layer by its own `sparse_ratio`: int(ratio · n) units
(weights for level; output channels with their bias for the norm and FPGM pruners), the lowest
scores first as torch.topk picks them — NNI's own selection, so masks equal NNI's
(tests/presets/test_nni.py, run when nni is installed). Formulas: level |w|; l1_norm ‖w_row‖₁;
l2_norm ‖w_row‖₂; fpgm Σ_j ‖w_row − w_j‖₂ (He et al., CVPR 2019). Without dependency-aware mode,
as in NNI, coupled consumers keep their columns: use target "channel" to remove them too.

Training-time and data pruners (slim, apoz, mean_activation, taylor_fo) use the graph-aware
`channel` target: activations are read where each channel is consumed and γ among its coupled
members. Scheduled pruners run `total_times` rounds `interval_steps` apart (the first at
start + interval): linear (i/N)·S, agp S·(1 − (1 − i/N)³), lottery ticket 1 − (1 − S)^(i/N) with
weights rewound after each round; `pruning_algorithm` picks the basic pruner (level, l1, l2, fpgm).
"""
from ..errors import ConfigError
from . import register_preset

ORIGIN = "NNI 3.0 (nni.compression.pruning)"
RATIO = {"allocator": "uniform", "scheduler": "one-pass",
         "objective": {"name": "amount", "target": 0.5, "rounding": "floor"}}
OPTIONS = {"sparse_ratio": "objective.target"}

register_preset("nni.level", "each weight loses int(sparse_ratio·n) of its smallest-|w| entries",
                f"{ORIGIN}: LevelPruner", {**RATIO, "target": "element", "metric": "l1"}, OPTIONS)
register_preset("nni.l1_norm", "each layer loses int(sparse_ratio·rows) output channels with the smallest L1 norm",
                f"{ORIGIN}: L1NormPruner", {**RATIO, "target": "channel-local", "metric": "l1"}, OPTIONS)
register_preset("nni.l2_norm", "each layer loses int(sparse_ratio·rows) output channels with the smallest L2 norm",
                f"{ORIGIN}: L2NormPruner", {**RATIO, "target": "channel-local", "metric": "l2"}, OPTIONS)
register_preset("nni.fpgm", "each layer loses int(sparse_ratio·rows) output channels nearest the geometric "
                "median (smallest distance sum to the other filters)",
                f"{ORIGIN}: FPGMPruner", {**RATIO, "target": "channel-local", "metric": "fpgm"}, OPTIONS)

# --- training-time and iterative pruners -----------------------------------------------------
CHANNELS = {"target": "channel", "allocator": "uniform", "scheduler": "one-pass",
            "objective": {"name": "sparsity", "target": 0.5}}
SPARSE = {"sparse_ratio": "objective.target"}


def algorithm(value) -> dict:
    """NNI's pruning_algorithm of the scheduled pruners, as target and metric."""
    table = {"level": ("element", "l1"), "l1": ("channel-local", "l1"), "l2": ("channel-local", "l2"),
             "fpgm": ("channel-local", "fpgm")}
    if value not in table:
        raise ConfigError(f"pruning_algorithm: {value!r} is not one of {', '.join(table)}")
    target, metric = table[value]
    return {"target": target, "metric": metric}


ROUNDS = {**SPARSE, "pruning_algorithm": algorithm, "total_times": "scheduler.rounds",
          "interval_steps": "scheduler.frequency"}
ANNEAL = {"start_temperature": "allocator.start_temperature", "stop_temperature": "allocator.stop_temperature",
          "cool_down_rate": "allocator.cool_down_rate", "perturbation_magnitude": "allocator.perturbation_magnitude"}
LEVEL = {"target": "element", "metric": "l1", "objective": {"name": "sparsity", "target": 0.5}}

register_preset("nni.slim", "L1 on BatchNorm γ for training_steps (default 100; α·sign(γ) added before each "
                "optimizer step), then channels with the smallest |γ| over all layers", f"{ORIGIN}: SlimPruner",
                {**CHANNELS, "metric": "bn_scale", "allocator": "global", "scheduler": {"name": "one-pass", "start": 100},
                 "training": [{"name": "slim", "alpha": 1e-4}]},
                {**SPARSE, "regular_scale": "training.slim.alpha", "training_steps": "scheduler.start"})
register_preset("nni.apoz", "coupled channels with the highest average percentage of zeros after the "
                "activation, over data", f"{ORIGIN}: APoZ (Hu et al., 2016)", {**CHANNELS, "metric": "apoz"}, SPARSE)
register_preset("nni.mean_activation", "coupled channels with the lowest mean activation, over data",
                f"{ORIGIN}: MeanActivation (Molchanov et al., 2017)", {**CHANNELS, "metric": "mean_activation"}, SPARSE)
register_preset("nni.taylor_fo", "coupled channels by Σ (w·g)² accumulated over training steps",
                f"{ORIGIN}: TaylorPruner (Molchanov et al., CVPR 2019)",
                {**CHANNELS, "metric": {"name": "taylor", "power": 2, "batches": None}}, SPARSE)
register_preset("nni.movement", "learned movement scores −Σ w·g, cubic schedule s_f(1 − (1 − p)³) from "
                "warm_up_step to cool_down_beginning_step, pruned at every step",
                f"{ORIGIN}: MovementPruner (Sanh et al., NeurIPS 2020)",
                {**LEVEL, "metric": "movement", "allocator": "uniform",
                 "scheduler": {"name": "agp", "start": 0, "end": 100, "frequency": 1}},
                {**SPARSE, "warm_up_step": "scheduler.start", "cool_down_beginning_step": "scheduler.end"})
register_preset("nni.linear", "round i of N prunes to (i/N)·S with the chosen basic pruner",
                f"{ORIGIN}: LinearPruner", {**LEVEL, "allocator": "uniform",
                                            "scheduler": {"name": "linear", "rounds": 10}}, ROUNDS)
register_preset("nni.agp", "round i of N prunes to S·(1 − (1 − i/N)³) with the chosen basic pruner",
                f"{ORIGIN}: AGPPruner (Zhu & Gupta, 2017)", {**LEVEL, "allocator": "uniform",
                                                              "scheduler": {"name": "agp", "rounds": 10}}, ROUNDS)
register_preset("nni.lottery_ticket", "round i of N prunes to 1 − (1 − S)^(i/N), weights rewound to their values "
                "at the start after every round", f"{ORIGIN}: LotteryTicketPruner (Frankle & Carbin, ICLR 2019)",
                {**LEVEL, "allocator": "uniform", "scheduler": {"name": "decay", "curve": "exp", "rounds": 5},
                 "training": ["rewind"]}, ROUNDS)
register_preset("nni.simulated_annealing", "per-layer sparsities searched by simulated annealing against "
                "evaluate() (T 100 → 20, ×0.9 on acceptance, perturbation 0.35·T/T0)",
                f"{ORIGIN}: SimulatedAnnealingPruner", {**LEVEL, "allocator": "annealing", "scheduler": "one-pass"},
                {**SPARSE, **ANNEAL, "pruning_algorithm": algorithm})
register_preset("nni.auto_compress", "rounds of simulated-annealing allocation with a group-lasso penalty while "
                "fine-tuning (in place of NNI's ADMM, which pruner_iface does not implement)",
                f"{ORIGIN}: AutoCompressPruner (Liu et al., AAAI 2020)",
                {**LEVEL, "allocator": "annealing", "scheduler": {"name": "linear", "rounds": 3},
                 "training": [{"name": "group_lasso", "alpha": 1e-4}]},
                {**ROUNDS, **ANNEAL, "alpha": "training.group_lasso.alpha"})
register_preset("nni.amc", "AMC-like per-layer channel ratios under a FLOPs budget, searched by simulated annealing "
                "against evaluate() (not AMC's DDPG agent); channels in multiples of 8, every layer keeps >= 20%",
                "NNI 3.0 AMCPruner's problem (He et al., ECCV 2018), solved without reinforcement learning",
                {"target": {"name": "channel", "round_to": 8}, "metric": "l2",
                 "allocator": {"name": "annealing", "max_ratio": 0.8}, "scheduler": "one-pass",
                 "objective": {"name": "flops", "target": 0.5}},
                {"total_sparsity": lambda value: {"objective.target": 1.0 - value}, "max_sparsity_per_layer": "allocator.max_ratio"})
