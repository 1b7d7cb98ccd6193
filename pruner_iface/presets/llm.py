"""One-shot LLM presets (calibration data, no training).

- `wanda` (Sun et al., "A Simple and Effective Pruning Approach for Large Language Models", ICLR
  2024): S_ij = |W_ij|·‖X_j‖₂ over the calibration tokens, the lowest pruned within each output
  row, no weight update; `wanda-2:4` keeps the 2 best of every 4 inputs. The paper prunes the
  Linear layers of the transformer blocks: pass exclude=["lm_head"] (your model's head name).
- `sparsegpt` (Frantar & Alistarh, "SparseGPT", ICML 2023): H = XᵀX of each layer's calibration
  inputs (damped by 1% of its mean diagonal); columns in blocks of 128, the weights with the
  lowest w²/[H⁻¹]_qq pruned as the pass reaches them and the rest updated by
  −w_q·H⁻¹_{q,:}/[H⁻¹]_qq (the `sparsegpt` training mechanism); 50% of every Linear, each block
  of 128 columns at that sparsity. `sparsegpt-2:4` keeps 2 of every 4 inputs. The metric only
  matters when a layer is already partly pruned (it then says how many go per block).
- `flap` (An et al., "Fluctuation-based Adaptive Structured Pruning for LLMs", AAAI 2024):
  coupled MLP neurons scored by Σ_j Var(X_j)·‖W_{:,j}‖² at the down projection's input,
  standardised per layer and compared over all layers (so layers lose different shares), 20%
  overall; the pruned inputs' means are added to the down projection's bias. Pass
  target="head" for attention heads.
- `llm_pruner` (Ma et al., "LLM-Pruner", NeurIPS 2023): coupled MLP neurons (gate, up and down
  projections together) by first-order Taylor |w·g| from calibration batches, the same ratio
  in every layer; pass target="head" for attention heads (grouped-query aware).
"""
from __future__ import annotations

from . import register_preset

ONE_SHOT = {"allocator": "uniform", "scheduler": "one-pass"}
register_preset("wanda", "|W|·‖X_j‖ compared within each output row, 50% of every Linear (calibration data)",
                "Wanda (Sun et al., ICLR 2024)",
                {**ONE_SHOT, "target": {"name": "element", "scope": "row", "module_types": ["Linear"]},
                 "metric": "wanda", "objective": {"name": "sparsity", "target": 0.5}},
                {"sparsity_ratio": "objective.target"})
register_preset("wanda-2:4", "|W|·‖X_j‖, keep the 2 best of every 4 inputs of every Linear (calibration data)",
                "Wanda (Sun et al., ICLR 2024), N:M sparsity",
                {**ONE_SHOT, "target": {"name": "n:m", "n": 2, "m": 4, "module_types": ["Linear"]},
                 "metric": "wanda", "objective": {"name": "sparsity", "target": 0.5}})
SPARSEGPT_OPTIONS = {"sparsity": "objective.target", "blocksize": "training.sparsegpt.block_size",
                     "percdamp": "training.sparsegpt.damp"}
register_preset("sparsegpt", "row-wise OBS from calibration inputs, weights updated; 50% of every Linear",
                "SparseGPT (Frantar & Alistarh, ICML 2023)",
                {**ONE_SHOT, "target": {"name": "element", "module_types": ["Linear"]}, "metric": "l1",
                 "objective": {"name": "sparsity", "target": 0.5}, "training": ["sparsegpt"]},
                SPARSEGPT_OPTIONS)
register_preset("sparsegpt-2:4", "row-wise OBS from calibration inputs, weights updated; 2 of every 4 inputs kept",
                "SparseGPT (Frantar & Alistarh, ICML 2023), N:M sparsity",
                {**ONE_SHOT, "target": {"name": "n:m", "n": 2, "m": 4, "module_types": ["Linear"]}, "metric": "l1",
                 "objective": {"name": "sparsity", "target": 0.5}, "training": ["sparsegpt"]},
                {k: v for k, v in SPARSEGPT_OPTIONS.items() if k != "sparsity"})
register_preset("flap", "MLP neurons by input fluctuation, standardised per layer, global 20%; bias compensated",
                "FLAP (An et al., AAAI 2024)",
                {"allocator": "global", "scheduler": "one-pass", "target": "mlp",
                 "metric": {"name": "fluctuation", "standardize": True},
                 "objective": {"name": "sparsity", "target": 0.2}, "training": ["bias_compensation"]},
                {"pruning_ratio": "objective.target"})
register_preset("llm_pruner", "coupled MLP neurons by Taylor |w·g| over calibration batches, 20% of every layer",
                "LLM-Pruner (Ma et al., NeurIPS 2023), block-wise MLP pruning",
                {**ONE_SHOT, "target": "mlp", "metric": "taylor", "objective": {"name": "sparsity", "target": 0.2}},
                {"pruning_ratio": "objective.target"})
