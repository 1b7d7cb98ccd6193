"""What every benchmark prints first: the machine and library versions."""
from __future__ import annotations

import os
import platform

import torch

from pruner_iface.latency_table import cpu_name


def machine_header(title: str) -> str:
    return (f"# {title}\nmachine: {cpu_name()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}\n"
            f"python {platform.python_version()}, torch {torch.__version__}")
