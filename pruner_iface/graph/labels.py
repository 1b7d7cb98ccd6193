"""Channel labels: every producer output channel gets an integer label; labels that must be
removed together are joined in a union-find.

An activation's labels are an int64 tensor of the activation's rank, of size 1 on every dim
along which its labels do not change (NO_LABEL = -1 where no channel flows).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

NO_LABEL = -1


class UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.origin: list[str | None] = []  # module path of producer labels, None for others

    def fresh(self, n: int, origin: str | None = None) -> torch.Tensor:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.origin.extend([origin] * n)
        return torch.arange(start, start + n, dtype=torch.long)

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def union_tensors(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Join a[i] with b[i] wherever both are labels."""
        a, b = torch.broadcast_tensors(a, b)
        both = (a >= 0) & (b >= 0) & (a != b)
        if not both.any():
            return
        n = len(self.parent)
        keys = torch.unique(a[both] * n + b[both])  # one int per pair: a 1-D unique is fast
        for key in keys.tolist():
            self.union(key // n, key % n)

    def union_all(self, labels: torch.Tensor) -> None:
        values = torch.unique(labels[labels >= 0]).tolist()
        for other in values[1:]:
            self.union(values[0], other)

    def roots(self) -> torch.Tensor:
        return torch.tensor([self.find(i) for i in range(len(self.parent))], dtype=torch.long)

    def canonical(self, labels: torch.Tensor) -> torch.Tensor:
        """Each label replaced by its class root, so that joined labels compare equal."""
        if labels.numel() == 0 or not bool((labels >= 0).any()):
            return labels
        values, inverse = torch.unique(labels, return_inverse=True)
        roots = torch.tensor([self.find(v) if v >= 0 else v for v in values.tolist()], dtype=torch.long)
        return roots[inverse]


def compress(labels: torch.Tensor, uf: "UnionFind | None" = None) -> torch.Tensor:
    """Shrink to size 1 every dim along which the labels (as class roots, given `uf`) are constant."""
    labels = _squeeze_constant(labels)
    if uf is not None:  # joined labels compare equal once replaced by their roots
        labels = _squeeze_constant(uf.canonical(labels))
    return labels.contiguous()


def _squeeze_constant(labels: torch.Tensor) -> torch.Tensor:
    for d in range(labels.dim()):
        if labels.shape[d] > 1 and bool((labels == labels.narrow(d, 0, 1)).all()):
            labels = labels.narrow(d, 0, 1)
    return labels


def free(rank: int) -> torch.Tensor:
    return torch.full((1,) * rank, NO_LABEL, dtype=torch.long)


@dataclass
class Slice:
    """Labels along one dim of a parameter or buffer (dim None: labels of every element)."""

    tensor: str
    dim: int | None
    labels: torch.Tensor


@dataclass
class LabelState:
    uf: UnionFind = field(default_factory=UnionFind)
    slices: list[Slice] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    approximate: set[int] = field(default_factory=set)  # labels normalised together (LayerNorm)
    warnings: list[str] = field(default_factory=list)

    def block(self, labels: torch.Tensor, reason: str | None = None) -> None:
        found = torch.unique(labels[labels >= 0]).tolist()
        self.blocked.update(found)
        if reason and found and reason not in self.warnings:
            self.warnings.append(reason)

    def collapse(self, labels: torch.Tensor, dim: int, size: int) -> torch.Tensor:
        """One label per index of `dim`: labels at that index elsewhere are joined; an index mixing
        labelled and unlabelled positions is blocked."""
        labels = labels.movedim(dim, -1).expand(*labels.movedim(dim, -1).shape[:-1], size).reshape(-1, size)
        first = labels[0].clone()
        if labels.shape[0] > 1:
            for row in labels[1:]:
                self.uf.union_tensors(first, row)
            mixed = (labels < 0).any(0) & (labels >= 0).any(0)
            if mixed.any():
                self.block(labels[:, mixed])
            first = torch.where(first >= 0, first, labels.max(0).values)
        return self.uf.canonical(first)
