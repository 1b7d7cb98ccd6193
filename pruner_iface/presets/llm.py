"""One-shot LLM presets (calibration data, no training).

- `wanda` (Sun et al., "A Simple and Effective Pruning Approach for Large Language Models", ICLR
  2024): S_ij = |W_ij|·‖X_j‖₂ over the calibration tokens, the lowest pruned within each output
  row, no weight update; `wanda-2:4` keeps the 2 best of every 4 inputs. The paper prunes the
  Linear layers of the transformer blocks: pass exclude=["lm_head"] (your model's head name).
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
register_preset("llm_pruner", "coupled MLP neurons by Taylor |w·g| over calibration batches, 20% of every layer",
                "LLM-Pruner (Ma et al., NeurIPS 2023), block-wise MLP pruning",
                {**ONE_SHOT, "target": "mlp", "metric": "taylor", "objective": {"name": "sparsity", "target": 0.2}},
                {"pruning_ratio": "objective.target"})
