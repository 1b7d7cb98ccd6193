"""Time of one global-magnitude mask computation over 100M parameters spread over Linear layers.

Measured parts: scoring (|w|), the global threshold and per-layer selection (allocator), and the
bool masks. Goal: under 1 s on a 2-core CPU. Also reports the whole Pruner.run() (which also
applies the masks in place and measures the objective).
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import pruner_iface as pi
from pruner_iface import loop

from .common import machine_header


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", type=float, default=100e6)
    parser.add_argument("--layers", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(machine_header("global magnitude mask computation"))
    side = int((args.params / args.layers) ** 0.5)
    torch.manual_seed(0)
    with torch.no_grad():
        model = nn.Sequential(*[nn.Linear(side, side, bias=False) for _ in range(args.layers)])
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.layers} Linear layers of {side}x{side}: {n / 1e6:.1f}M parameters")
    inputs = (torch.randn(1, side),)
    pruner = pi.Pruner(model, inputs, target="element", metric="l1", allocator="global",
                       objective={"name": "sparsity", "target": 0.5})
    timings = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        unit_scores, _ = loop.score_units(pruner.layers, pruner.metric)
        t1 = time.perf_counter()
        proposal = pruner.allocator.allocate(pruner.layers, unit_scores, 0.5, [0] * len(pruner.layers))
        t2 = time.perf_counter()
        pruned = proposal.pruned_sets(unit_scores)
        t3 = time.perf_counter()
        timings.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
        removed = sum(int(p.sum()) for p in pruned)
        del unit_scores, pruned
    best = min(timings, key=lambda t: t[-1])
    print(f"removed {removed:,} of {n:,} ({removed / n:.4f})")
    print(f"best of {args.repeats}: score {best[0]:.3f} s + threshold {best[1]:.3f} s + masks {best[2]:.3f} s "
          f"= {best[3]:.3f} s (goal < 1 s)")
    t0 = time.perf_counter()
    report = pruner.run()
    print(f"whole Pruner.run() (score, allocate, measure, apply masks in place): {time.perf_counter() - t0:.3f} s, "
          f"sparsity {report.steps[-1].objective_value:.4f}")
    return {"total_s": best[3]}


if __name__ == "__main__":
    main()
