"""Built-in presets composed from the registered parts: (name, description, origin, config)."""
from . import register_preset

BUILTIN = [
    (
        "demo", "Coupled channels (multiples of 8) by L2 norm, global, AGP over 3 steps, to half the FLOPs",
        "pruner_iface's demo composition",
        {"target": {"name": "channel", "round_to": 8}, "metric": "l2", "allocator": "global",
         "scheduler": {"name": "agp", "start": 0, "end": 3}, "objective": {"name": "flops", "target": 0.5}},
    ),
    (
        "magnitude-global", "Unstructured global magnitude pruning to 50% sparsity",
        "Han et al., Learning both Weights and Connections, NeurIPS 2015",
        {"target": "element", "metric": "l1", "allocator": "global", "scheduler": "one-pass",
         "objective": {"name": "sparsity", "target": 0.5}},
    ),
    (
        "magnitude-uniform", "Unstructured magnitude pruning, the same sparsity in every layer",
        "layer-wise magnitude pruning",
        {"target": "element", "metric": "l1", "allocator": "uniform", "scheduler": "one-pass",
         "objective": {"name": "sparsity", "target": 0.5}},
    ),
    (
        "gradual-magnitude", "AGP gradual magnitude pruning to 90% (drive with the training-loop hooks)",
        "Zhu & Gupta, To prune, or not to prune, 2017: s = s_f + (s_i - s_f)(1 - p)^3",
        {"target": "element", "metric": "l1", "allocator": "uniform",
         "scheduler": {"name": "agp", "start": 0, "end": 100, "frequency": 10},
         "objective": {"name": "sparsity", "target": 0.9}},
    ),
    (
        "nm-2:4", "2:4 semi-structured magnitude pruning (keep 2 of every 4 input weights)",
        "NVIDIA Ampere sparse tensor cores (Mishra et al., 2021)",
        {"target": {"name": "n:m", "n": 2, "m": 4}, "metric": "l1", "allocator": "uniform",
         "scheduler": "one-pass", "objective": {"name": "sparsity", "target": 0.5}},
    ),
    (
        "snip", "Single-shot |w*g| pruning on one batch before training, global, 90%",
        "Lee et al., SNIP, ICLR 2019",
        {"target": "element", "metric": "snip", "allocator": "global", "scheduler": "one-pass",
         "objective": {"name": "sparsity", "target": 0.9}},
    ),
    (
        "snip-momentum-4x1", "4x1 blocks by snip_momentum, global, exp decay, 90% (training-loop hooks)",
        "Intel Neural Compressor's default pruning composition (snip_momentum, 4x1, global, exp)",
        {"target": {"name": "block", "block": [4, 1]}, "metric": "snip_momentum", "allocator": "global",
         "scheduler": {"name": "decay", "curve": "exp", "start": 0, "end": 100, "frequency": 10},
         "objective": {"name": "sparsity", "target": 0.9}},
    ),
    (
        "channel-flops", "Coupled channels by L2 norm, uniform, one pass, to half the FLOPs",
        "filter pruning by norm (Li et al., Pruning Filters for Efficient ConvNets, ICLR 2017)",
        {"target": "channel", "metric": "l2", "allocator": "uniform", "scheduler": "one-pass",
         "objective": {"name": "flops", "target": 0.5}},
    ),
]

for _name, _description, _origin, _config in BUILTIN:
    register_preset(_name, _description, _origin, _config)
