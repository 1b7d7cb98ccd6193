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
