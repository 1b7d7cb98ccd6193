"""Time per FLOP of a Linear layer against its output width: why pruned widths are rounded.

A pruned layer keeps whatever count of units its allocator leaves (MiniLM's knapsack left 639,
717, 778, ... MLP neurons). This times `F.linear` on MiniLM's shapes (32 sentences x 64 tokens,
384 features in) for widths on and off oneDNN's fp32 channel block and prints each one's time
per output feature relative to the dense width (1536), for the up projection (width = output
features) and the down projection (width = input features). Best of `--repeats` runs each,
in one process.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from pruner_iface.latency_table import cpu_channel_block

from .common import machine_header

WIDTHS = (32, 64, 96, 160, 192, 384, 639, 640, 717, 720, 778, 784, 814, 816, 1006, 1008, 1024, 1536)


def best_time(rows: int, inputs: int, outputs: int, repeats: int) -> float:
    x, w, b = torch.randn(rows, inputs), torch.randn(outputs, inputs), torch.randn(outputs)
    for _ in range(3):
        F.linear(x, w, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        F.linear(x, w, b)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32 * 64, help="tokens per batch")
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--dense", type=int, default=1536, help="the unpruned width")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    print(machine_header("Linear time per FLOP against width"))
    block = cpu_channel_block()
    up_ref = best_time(args.rows, args.hidden, args.dense, args.repeats) / args.dense
    down_ref = best_time(args.rows, args.dense, args.hidden, args.repeats) / args.dense
    print(f"rows {args.rows}, hidden {args.hidden}; per-FLOP time relative to width {args.dense}; "
          f"oneDNN fp32 block {block}")
    print(f"{'width':>6s} {'multiple':>9s} {'up projection':>14s} {'down projection':>16s}")
    for width in WIDTHS:
        up = best_time(args.rows, args.hidden, width, args.repeats) / width / up_ref
        down = best_time(args.rows, width, args.hidden, args.repeats) / width / down_ref
        print(f"{width:6d} {'yes' if width % block == 0 else 'no':>9s} {up:14.3f} {down:16.3f}")


if __name__ == "__main__":
    main()
