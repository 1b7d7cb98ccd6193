"""Latency tables: per-op latency measured once for candidate channel counts, cached on disk.

An op is a Linear or ConvNd (dense or depthwise) with its input shape; its signature (type,
channels, kernel, stride, padding, dilation, groups, bias, input shape, dtype) keys the cache,
whose file is also keyed by device, torch version and thread count. For each op two curves are
measured: latency against output channels (inputs full) and against input channels (outputs
full); a depthwise conv has one curve (inputs follow outputs). Points sit at multiples of
`block` and one past them, so that the staircase of vectorised kernels (oneDNN blocks channels by
8, or 16 with AVX-512) is captured. Wide ops are measured at every few blocks only, so a curve is
read as a staircase, not joined point to point: a smooth part interpolated over the measured
multiples, plus, for a count that is not a multiple of `block`, the tail cost measured one past
the neighbouring multiples (Curves.predict). The latency of a pruned op is out(o) · in(i) / full
(the two axes scale independently).

A cache file that cannot be read, or was written for another device, torch, thread count or
measuring grid (block, max_points), is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

FORMAT = 2  # 2: curves carry their block (staircase reading)
_CONVS = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Conv3d: "conv3d"}


@dataclass(frozen=True)
class OpSignature:
    kind: str                    # "linear", "conv1d", "conv2d", "conv3d"
    in_channels: int
    out_channels: int
    input_shape: tuple           # the input's shape; its channel entry is the dense count
    depthwise: bool = False
    bias: bool = True
    kernel: tuple = ()
    stride: tuple = ()
    padding: object = ()
    dilation: tuple = ()
    dtype: str = "float32"

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=list)

    @property
    def channel_dim(self) -> int:
        return -1 if self.kind == "linear" else 1

    def build(self, kept_in: int, kept_out: int) -> tuple[nn.Module, torch.Tensor]:
        """A fresh op with these channel counts and a random input for it."""
        dtype = getattr(torch, self.dtype)
        if self.kind == "linear":
            op = nn.Linear(kept_in, kept_out, bias=self.bias)
        else:
            cls = {v: k for k, v in _CONVS.items()}[self.kind]
            groups = kept_out if self.depthwise else 1
            kept_in = kept_out if self.depthwise else kept_in
            op = cls(kept_in, kept_out, self.kernel, self.stride, self.padding, self.dilation, groups=groups,
                     bias=self.bias)
        shape = list(self.input_shape)
        shape[self.channel_dim] = kept_in
        return op.to(dtype).eval(), torch.randn(shape, dtype=dtype)


def signature_of(module: nn.Module, input_shape: tuple, dtype: torch.dtype) -> Optional[OpSignature]:
    """The op's signature, or None for ops the table does not model (grouped, non-depthwise conv;
    other module types)."""
    dtype_name = str(dtype).replace("torch.", "")
    if type(module) is nn.Linear:
        return OpSignature("linear", module.in_features, module.out_features, tuple(input_shape),
                           bias=module.bias is not None, dtype=dtype_name)
    kind = _CONVS.get(type(module))
    if kind is None or module.padding_mode != "zeros":
        return None
    depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
    if module.groups > 1 and not depthwise:
        return None
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    return OpSignature(kind, module.in_channels, module.out_channels, tuple(input_shape), depthwise,
                       module.bias is not None, tuple(module.kernel_size), tuple(module.stride), padding,
                       tuple(module.dilation), dtype_name)


def cpu_channel_block() -> int:
    """Channels oneDNN packs per vector register for fp32 on this CPU (16 with AVX-512, else 8):
    channel counts that are multiples of it avoid padded, partly wasted blocks."""
    try:
        with open("/proc/cpuinfo") as f:
            return 16 if any(line.startswith("flags") and " avx512f" in line for line in f) else 8
    except OSError:
        return 8


def candidate_counts(size: int, block: int, max_points: int) -> list[int]:
    """Channel counts to measure: 1, `size`, and each multiple of the step (a multiple of `block`)
    together with the count one past it, where the next block starts."""
    step = block * max(1, math.ceil(size / (block * max_points)))
    points = {1, size}
    for c in range(step, size + 1, step):
        points.add(c)
        if c + 1 <= size:
            points.add(c + 1)
    return sorted(points)


@dataclass
class Curves:
    """Measured latency (ms) against output and input channel counts of one op."""

    out_points: list[int]
    out_ms: list[float]
    in_points: list[int]
    in_ms: list[float]
    block: int = 1  # the staircase period the points were measured for (1: none, plain interpolation)

    @property
    def full_ms(self) -> float:
        return self.out_ms[-1]

    def predict(self, kept_in, kept_out) -> np.ndarray:
        """Latency for kept input / output counts (numbers or arrays)."""
        out = staircase(kept_out, self.out_points, self.out_ms, self.block)
        if not self.in_points:  # depthwise: inputs follow outputs
            return out
        return out * staircase(kept_in, self.in_points, self.in_ms, self.block) / self.full_ms

    @classmethod
    def from_json(cls, entry: dict) -> "Curves":
        curves = cls(**{k: list(entry[k]) for k in ("out_points", "out_ms", "in_points", "in_ms")},
                     block=entry["block"])
        if not isinstance(curves.block, int) or curves.block < 1:
            raise ValueError("malformed block")
        for points, ms in ((curves.out_points, curves.out_ms), (curves.in_points, curves.in_ms)):
            if len(points) != len(ms) or points != sorted(points) or any(
                    not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in ms):
                raise ValueError("malformed curve")
        if not curves.out_points:
            raise ValueError("empty curve")
        return curves


def staircase(counts, points: list[int], ms: list[float], block: int) -> np.ndarray:
    """Latency at `counts` from points measured at multiples of `block`, one past them, 1 and the
    full count. Between the first and last measured multiple: a smooth part through the
    multiples, plus, for counts off a multiple, a tail cost (what one past a multiple measured
    over the smooth part, never below zero) interpolated between measured multiples, so every
    block multiple is as cheap as its neighbours, not only the measured ones. Outside that range
    (below the first block, past the last multiple): the measured points joined linearly."""
    counts = np.asarray(counts, dtype=np.float64)
    x, y = np.asarray(points, dtype=np.float64), np.asarray(ms, dtype=np.float64)
    plain = np.interp(counts, x, y)
    whole = x % block == 0
    past = np.isin(x - 1, x[whole]) & (x - 1 < x[whole].max(initial=0))  # one past a multiple, inside the range
    if block == 1 or not past.any():
        return plain
    smooth = np.interp(counts, x[whole], y[whole])
    tail = np.maximum(y[past] - np.interp(x[past], x[whole], y[whole]), 0.0)
    inside = (counts >= x[whole][0]) & (counts <= x[whole][-1])
    return np.where(inside, smooth + np.where(counts % block != 0, np.interp(counts, x[past], tail), 0.0), plain)


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def device_name(device: str) -> str:
    return f"cuda:{torch.cuda.get_device_name()}" if device == "cuda" else f"cpu:{cpu_name()}"


def default_cache_dir() -> Path:
    return Path(os.environ.get("PRUNER_IFACE_CACHE", Path.home() / ".cache" / "pruner_iface"))


class LatencyTable:
    """Latency curves per op signature, measured on demand and cached as JSON in `cache_dir`
    (None: in memory only)."""

    def __init__(self, cache_dir: Optional[Path], device: str = "cpu", threads: Optional[int] = None,
                 runs: int = 7, warmup: int = 2, block: Optional[int] = None, max_points: int = 16):
        self.device, self.runs, self.warmup = device, runs, warmup
        block = block or (cpu_channel_block() if device == "cpu" else 8)
        self.block, self.max_points = block, max_points
        self.threads = threads or torch.get_num_threads()
        self.header = {"format": FORMAT, "device": device_name(device), "torch": torch.__version__,
                       "threads": self.threads, "block": block, "max_points": max_points}
        digest = hashlib.sha1(json.dumps(self.header, sort_keys=True).encode()).hexdigest()[:12]
        self.path = None if cache_dir is None else Path(cache_dir) / f"latency-table-{digest}.json"
        self.entries: dict[str, Curves] = {}
        self.rebuilt_reason: Optional[str] = None
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict) or data.get("header") != self.header:
                raise ValueError(f"written for {data.get('header') if isinstance(data, dict) else '?'}, "
                                 f"not {self.header}")
            self.entries = {key: Curves.from_json(entry) for key, entry in data["entries"].items()}
        except Exception as exc:  # corrupt or stale: rebuilt, never trusted
            self.entries = {}
            self.rebuilt_reason = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"pruner_iface: latency table {self.path} is not usable ({self.rebuilt_reason}); "
                          f"it is measured again")

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"header": self.header, "entries": {k: asdict(v) for k, v in self.entries.items()}}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def curves(self, signatures: list[OpSignature]) -> list[Curves]:
        """The curves of each signature, measuring (and saving) the missing ones."""
        missing = [s for s in dict.fromkeys(signatures) if s.key() not in self.entries]
        if missing:
            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                for sig in missing:
                    self.entries[sig.key()] = self._measure_curves(sig)
            finally:
                torch.set_num_threads(previous)
            self._save()
        return [self.entries[s.key()] for s in signatures]

    def _measure_curves(self, sig: OpSignature) -> Curves:
        out_points = candidate_counts(sig.out_channels, self.block, self.max_points)
        out_ms = [self.time_op(sig, sig.in_channels, c) for c in out_points]
        if sig.depthwise:
            return Curves(out_points, out_ms, [], [], self.block)
        in_points = candidate_counts(sig.in_channels, self.block, self.max_points)
        in_ms = [out_ms[-1] if c == sig.in_channels else self.time_op(sig, c, sig.out_channels) for c in in_points]
        return Curves(out_points, out_ms, in_points, in_ms, self.block)

    def time_op(self, sig: OpSignature, kept_in: int, kept_out: int) -> float:
        """Median latency (ms) of one op; short ops are timed in repeated batches."""
        op, x = sig.build(kept_in, kept_out)
        op, x = op.to(self.device), x.to(self.device)
        cuda = self.device == "cuda"
        with torch.inference_mode():
            for _ in range(self.warmup + 1):
                op(x)
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            op(x)
            if cuda:
                torch.cuda.synchronize()
            once = time.perf_counter() - start
            reps = max(1, min(200, int(2e-3 / max(once, 1e-7))))
            times = []
            for _ in range(self.runs):
                start = time.perf_counter()
                for _ in range(reps):
                    op(x)
                if cuda:
                    torch.cuda.synchronize()
                times.append((time.perf_counter() - start) * 1000.0 / reps)
        return statistics.median(times)
