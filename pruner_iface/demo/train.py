"""Minimal training and evaluation loops for the demo model."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batches(x: torch.Tensor, y: torch.Tensor, size: int, generator: torch.Generator | None = None):
    order = torch.randperm(len(y), generator=generator) if generator is not None else torch.arange(len(y))
    for i in range(0, len(y), size):
        idx = order[i : i + size]
        yield x[idx], y[idx]


def train(model: nn.Module, x, y, *, epochs: int, lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
          progress: bool = False) -> None:
    """Adam with cosine decay; masks (if any) are re-applied after each optimizer step by pruner_iface."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(y) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    model.train()
    for _ in tqdm(range(epochs), desc="train", disable=not progress, leave=False):
        for xb, yb in batches(x, y, batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
            schedule.step()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x, y) -> float:
    was_training = model.training
    model.eval()
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in batches(x, y, 512))
    model.train(was_training)
    return correct / len(y)


def cross_entropy_loss(model: nn.Module, batch) -> torch.Tensor:
    """loss_fn(model, batch) for metrics that need gradients."""
    xb, yb = batch
    return F.cross_entropy(model(xb), yb)
