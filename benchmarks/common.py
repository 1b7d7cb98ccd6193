"""What every benchmark prints first: the machine and library versions."""
from __future__ import annotations

import os
import platform

import torch


def machine_header(title: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"# {title}\nmachine: {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}\n"
            f"python {platform.python_version()}, torch {torch.__version__}")


def onednn_channel_block() -> int:
    """Channels oneDNN packs per vector register for fp32 on this CPU (16 with AVX-512, else 8):
    channel counts that are multiples of it avoid padded, partly wasted blocks."""
    try:
        with open("/proc/cpuinfo") as f:
            return 16 if any(line.startswith("flags") and " avx512f" in line for line in f) else 8
    except OSError:
        return 8
