"""Mask memory overhead against torch.nn.utils.prune, same model, same process.

Counts the bytes of every distinct tensor a pruned model holds (parameters, buffers and plain
tensor attributes such as torch.nn.utils.prune's recomputed ``weight``), relative to the dense
parameter bytes. Goal for pruner_iface: at most 1.3x with a mask on every weight.
"""
from __future__ import annotations

import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

import pruner_iface as pi

from .common import machine_header


def build(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 128, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(128 * 4 * 4, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def tensor_bytes(model: nn.Module) -> int:
    seen, total = set(), 0
    for module in model.modules():
        tensors = list(module._parameters.values()) + list(module._buffers.values())
        tensors += [v for v in vars(module).values() if isinstance(v, torch.Tensor)]
        for t in tensors:
            if t is None:
                continue
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
    return total


def main(argv=None) -> dict:
    print(machine_header("mask memory: pruner_iface vs torch.nn.utils.prune"))
    inputs = (torch.randn(1, 3, 8, 8),)
    dense = build()
    param_bytes = sum(p.numel() * p.element_size() for p in dense.parameters())
    weights = [(m, "weight") for m in dense.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]

    ours = build()
    pi.Pruner(ours, inputs, target="element", metric="l1", objective={"name": "sparsity", "target": 0.5}).run()
    ours_bytes = tensor_bytes(ours)

    theirs = build()
    for m in theirs.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            torch_prune.l1_unstructured(m, "weight", amount=0.5)
    theirs(*inputs)  # torch recomputes `weight` in a forward pre-hook
    theirs_bytes = tensor_bytes(theirs)

    same = all(torch.equal((a.weight != 0), (b.weight != 0)) for a, b in
               zip([m for m in ours.modules() if isinstance(m, (nn.Linear, nn.Conv2d))],
                   [m for m in theirs.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]))
    print(f"dense parameter bytes: {param_bytes:,} ({len(weights)} masked weights)")
    print(f"pruner_iface:            {ours_bytes:,} bytes = {ours_bytes / param_bytes:.3f}x parameter bytes")
    print(f"torch.nn.utils.prune:    {theirs_bytes:,} bytes = {theirs_bytes / param_bytes:.3f}x parameter bytes")
    print(f"ratio pruner_iface / torch: {ours_bytes / theirs_bytes:.3f}; identical masks: {same}")
    return {"param_bytes": param_bytes, "ours": ours_bytes / param_bytes, "torch": theirs_bytes / param_bytes}


if __name__ == "__main__":
    main()
