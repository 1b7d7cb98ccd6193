"""What every benchmark prints first: the machine and library versions."""
from __future__ import annotations

import os
import platform

import torch

from pruner_iface.latency_table import cpu_name


def machine_header(title: str) -> str:
    return (f"# {title}\nmachine: {cpu_name()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}\n"
            f"python {platform.python_version()}, torch {torch.__version__}")


def onednn_channel_block() -> int:
    """Channels oneDNN packs per vector register for fp32 on this CPU (16 with AVX-512, else 8):
    channel counts that are multiples of it avoid padded, partly wasted blocks."""
    try:
        with open("/proc/cpuinfo") as f:
            return 16 if any(line.startswith("flags") and " avx512f" in line for line in f) else 8
    except OSError:
        return 8
