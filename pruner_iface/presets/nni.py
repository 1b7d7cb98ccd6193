"""Presets reproducing NNI 3.0's one-shot pruners (Microsoft NNI, nni.compression.pruning).

Each prunes every selected Linear/ConvNd layer by its own `sparse_ratio`: int(ratio · n) units
(weights for level; output channels with their bias for the norm and FPGM pruners), the lowest
scores first as torch.topk picks them — NNI's own selection, so masks equal NNI's
(tests/presets/test_nni.py, run when nni is installed). Formulas: level |w|; l1_norm ‖w_row‖₁;
l2_norm ‖w_row‖₂; fpgm Σ_j ‖w_row − w_j‖₂ (He et al., CVPR 2019). Without dependency-aware mode,
as in NNI, coupled consumers keep their columns: use target "channel" to remove them too.
"""
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
