"""The main job: train the digits CNN, prune it to half its FLOPs, fine-tune, speed up, report."""
from __future__ import annotations

import copy
import json
import os
import platform
import time
from dataclasses import dataclass

import torch

from ..counting import count_flops, count_params
from ..latency import compare_latency
from ..pruner import Pruner
from .digits import load_digits
from .model import DigitsResNet
from .train import accuracy, train


@dataclass
class DemoOptions:
    out: str = "demo_output"
    epochs: int = 15
    fine_tune_epochs: int = 2
    final_epochs: int = 4
    flops: float = 0.5
    seed: int = 0
    threads: int = 2
    progress: bool = True


def run_demo(opts: DemoOptions) -> dict:
    """Returns the before/after figures it printed and wrote."""
    started = time.perf_counter()
    torch.manual_seed(opts.seed)
    torch.set_num_threads(opts.threads)
    os.makedirs(opts.out, exist_ok=True)
    data = load_digits(seed=opts.seed)
    model = DigitsResNet()
    print(f"digits: {len(data.y_train)} train / {len(data.y_test)} test images (8x8); training the dense model...")
    train(model, data.x_train, data.y_train, epochs=opts.epochs, seed=opts.seed, progress=opts.progress)

    example = (data.x_test[:1],)
    bench_inputs = (data.x_test[:256],)
    dense = copy.deepcopy(model)

    def measure(m) -> dict:
        return {"accuracy": accuracy(m, data.x_test, data.y_test), "params": count_params(m),
                "flops": count_flops(m, example)}

    before = measure(dense)
    pruner = Pruner.from_preset("demo", model, example, objective={"target": opts.flops})
    step_seed = iter(range(opts.seed + 1, opts.seed + 1000))

    def fine_tune(m, step):
        train(m, data.x_train, data.y_train, epochs=opts.fine_tune_epochs, lr=1e-3, seed=next(step_seed))

    report = pruner.run(fine_tune=fine_tune, evaluate=lambda m: accuracy(m, data.x_test, data.y_test),
                        progress=opts.progress)
    train(model, data.x_train, data.y_train, epochs=opts.final_epochs, lr=1e-3, seed=next(step_seed))
    with torch.no_grad():
        masked_out = model.eval()(data.x_test)
    pruner.speed_up()
    with torch.no_grad():
        shrunk_out = model(data.x_test)
    max_diff = float((masked_out - shrunk_out).abs().max())
    after = measure(model)
    latency = compare_latency({"dense": dense, "pruned": model}, bench_inputs, rounds=6, runs=10,
                              threads=opts.threads)
    for figures, lat in ((before, latency["dense"]), (after, latency["pruned"])):
        figures.update(latency_ms=lat.median_ms, latency_p10_ms=lat.p10_ms, latency_p90_ms=lat.p90_ms)

    rows = [("accuracy", "{:.4f}"), ("params", "{:,}"), ("flops", "{:,}"), ("latency_ms", "{:.3f}")]
    print(f"\n{'':14s}{'before':>14s}{'after':>14s}{'ratio':>8s}")
    for key, fmt in rows:
        ratio = after[key] / before[key] if before[key] else float("nan")
        print(f"{key:14s}{fmt.format(before[key]):>14s}{fmt.format(after[key]):>14s}{ratio:8.3f}")
    print(f"latency: batch {len(bench_inputs[0])}, {opts.threads} threads, median of 60 runs in 6 interleaved rounds "
          f"(p10-p90 before {before['latency_p10_ms']:.3f}-{before['latency_p90_ms']:.3f} ms, "
          f"after {after['latency_p10_ms']:.3f}-{after['latency_p90_ms']:.3f} ms)")
    print(f"masked vs shrunk model: max |difference| of logits = {max_diff:.2e}")

    report.evaluation = after["accuracy"]
    report.extra.update({
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "torch": torch.__version__,
        "latency_ms (before, after)": [round(before["latency_ms"], 3), round(after["latency_ms"], 3)],
        "accuracy (before, after)": [round(before["accuracy"], 4), round(after["accuracy"], 4)],
        "masked_vs_shrunk_max_diff": max_diff,
    })
    report.to_json(os.path.join(opts.out, "report.json"))
    report.to_markdown(os.path.join(opts.out, "report.md"))
    torch.save(model, os.path.join(opts.out, "model.pt"))
    with open(os.path.join(opts.out, "summary.json"), "w") as f:
        json.dump({"before": before, "after": after, "masked_vs_shrunk_max_diff": max_diff}, f, indent=2)
    elapsed = time.perf_counter() - started
    print(f"wrote {opts.out}/report.json, report.md, model.pt, summary.json ({elapsed:.1f} s)")
    return {"before": before, "after": after, "max_diff": max_diff, "seconds": elapsed}
