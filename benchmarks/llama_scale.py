"""Scale: a LLaMA-shaped model of about 1.1B parameters (TinyLlama layout, random init):
graph build + one-shot pruning of 50% of query heads and 50% of MLP neurons + speed_up, timed
per phase, with the process's peak resident memory against the model's bytes.

`make bench NAME=llama_scale` (`--layers N` for a smaller run). Goals: under 120 s, peak memory
under 2x the model's bytes.
"""
from __future__ import annotations

import argparse
import resource
import time
import warnings

import torch

import pruner_iface as pi

from .common import machine_header


def build(layers: int):
    import transformers

    config = transformers.LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                                      num_hidden_layers=layers, num_attention_heads=32, num_key_value_heads=4,
                                      max_position_embeddings=2048, tie_word_embeddings=False)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=generator)
        model.model.rotary_emb.__init__(config)  # real rotary frequencies (buffers were left empty on meta)
    return model


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=22)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    print(machine_header("LLaMA-shaped model at ~1B parameters: heads + MLP one-shot, speed_up"))
    start = time.perf_counter()
    model = build(args.layers)
    params = sum(p.numel() for p in model.parameters())
    model_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
    baseline = peak_gib()
    print(f"model: {params / 1e9:.2f}B parameters, {model_gib:.2f} GiB; built in {time.perf_counter() - start:.1f} s; "
          f"peak RSS so far {baseline:.2f} GiB")
    inputs = {"input_ids": torch.randint(0, 32000, (1, 16), generator=torch.Generator().manual_seed(1))}
    with torch.no_grad():
        dense = model(**inputs).logits
    timings = {}
    total = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in ("head", "mlp"):
            t = time.perf_counter()
            pruner = pi.Pruner(model, inputs, target=target, metric="l2", objective={"name": "sparsity", "target": 0.5})
            timings[f"{target}: graph + bind"] = (time.perf_counter() - t, peak_gib())
            t = time.perf_counter()
            pruner.run(progress=False)
            timings[f"{target}: one-shot prune"] = (time.perf_counter() - t, peak_gib())
            t = time.perf_counter()
            pruner.speed_up()
            timings[f"{target}: speed_up"] = (time.perf_counter() - t, peak_gib())
    elapsed = time.perf_counter() - total  # phases only (peak reads are instantaneous)
    with torch.no_grad():
        out = model(**inputs).logits
    after = sum(p.numel() for p in model.parameters())
    for phase, (seconds, peak) in timings.items():
        print(f"  {phase:24s} {seconds:6.1f} s   peak RSS after it {peak:.2f} GiB")
    attention = model.model.layers[0].self_attn
    print(f"total {elapsed:.1f} s (goal < 120 s); parameters {params / 1e9:.3f}B -> {after / 1e9:.3f}B; "
          f"query heads per layer {attention.q_proj.out_features // attention.head_dim}, kv heads "
          f"{attention.k_proj.out_features // attention.head_dim}, MLP {model.model.layers[0].mlp.up_proj.out_features}")
    print(f"peak RSS {peak_gib():.2f} GiB = {peak_gib() / model_gib:.2f}x the model's {model_gib:.2f} GiB (goal < 2x); "
          f"logits shape {tuple(out.shape)} (dense {tuple(dense.shape)})")


if __name__ == "__main__":
    main()
