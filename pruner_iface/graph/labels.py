"""Channel labels: every producer output channel gets an integer label; labels that must be
removed together are joined in a union-find.

An activation's labels are an int64 tensor of the activation's rank, of size 1 on every dim
along which its labels do not change (NO_LABEL = -1 where no channel flows).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

NO_LABEL = -1


class UnionFind:
    """Vectorised union-find over integer labels: roots are the smallest label of their class
    (parent[x] <= x always), and joins work on whole arrays of pairs at once."""

    def __init__(self) -> None:
        self._parent = np.empty(0, dtype=np.int64)
        self._origin = np.empty(0, dtype=np.int64)  # index into origins, -1 for non-producer labels
        self.origins: list[str] = []
        self._origin_index: dict[str, int] = {}
        self.size = 0

    @property
    def parent(self) -> np.ndarray:
        return self._parent[: self.size]

    def fresh(self, n: int, origin: str | None = None) -> torch.Tensor:
        start, self.size = self.size, self.size + n
        if self.size > len(self._parent):
            capacity = max(self.size, 2 * len(self._parent), 1024)
            self._parent = np.concatenate([self._parent, np.arange(len(self._parent), capacity, dtype=np.int64)])
            self._origin = np.concatenate([self._origin, np.full(capacity - len(self._origin), -1, dtype=np.int64)])
        if origin is not None:
            if origin not in self._origin_index:
                self._origin_index[origin] = len(self.origins)
                self.origins.append(origin)
            self._origin[start:self.size] = self._origin_index[origin]
        return torch.arange(start, start + n, dtype=torch.long)

    def origin_of(self) -> np.ndarray:
        """Per label, the index in `origins` of the module that produced it (-1: not a producer)."""
        return self._origin[: self.size]

    def find_many(self, x: np.ndarray) -> np.ndarray:
        parent = self._parent
        start = x
        while True:
            up = parent[x]
            if (up == x).all():
                break
            x = parent[up]
        parent[start] = x  # path compression
        return x

    def find(self, x: int) -> int:
        return int(self.find_many(np.array([x], dtype=np.int64))[0])

    def union_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        while a.size:
            ra, rb = self.find_many(a), self.find_many(b)
            apart = ra != rb
            if not apart.any():
                return
            a, b, ra, rb = a[apart], b[apart], ra[apart], rb[apart]
            np.minimum.at(self._parent, np.maximum(ra, rb), np.minimum(ra, rb))

    def union(self, a: int, b: int) -> None:
        self.union_pairs(np.array([a], dtype=np.int64), np.array([b], dtype=np.int64))

    def union_tensors(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Join a[i] with b[i] wherever both are labels."""
        if a.numel() != b.numel():  # the smaller side repeats: find its roots once, not per repeat
            a, b = (self.canonical(a), b) if a.numel() < b.numel() else (a, self.canonical(b))
        a, b = (x.numpy() for x in torch.broadcast_tensors(a, b))
        both = (a >= 0) & (b >= 0) & (a != b)
        if both.any():
            self.union_pairs(a[both], b[both])

    def union_each(self, rows: torch.Tensor) -> None:
        """Join the labels within each row of a 2-D tensor (-1 entries ignored), all rows at once."""
        rows = rows.reshape(rows.shape[0], -1)
        first = torch.where(rows >= 0, rows, rows.max(1, keepdim=True).values) if rows.numel() else rows
        self.union_tensors(first[:, :1].expand_as(first), first)

    def roots(self) -> torch.Tensor:
        parent = self.parent
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent[:] = up
        return torch.from_numpy(parent.copy())

    def canonical(self, labels: torch.Tensor) -> torch.Tensor:
        """Each label replaced by its class root, so that joined labels compare equal."""
        flat = labels.reshape(-1).numpy()
        mask = flat >= 0
        if mask.all():
            if not flat.size:
                return labels
            roots = self.find_many(flat)
            return torch.from_numpy(roots.copy() if roots is flat else roots).reshape(labels.shape)
        if not mask.any():
            return labels
        roots = flat.copy()
        roots[mask] = self.find_many(flat[mask])
        return torch.from_numpy(roots).reshape(labels.shape)


def compress(labels: torch.Tensor, uf: "UnionFind | None" = None) -> torch.Tensor:
    """Shrink to size 1 every dim along which the labels (as class roots, given `uf`) are constant."""
    labels = torch.from_numpy(_squeeze_constant(labels.numpy()))
    if uf is not None:  # joined labels compare equal once replaced by their roots
        labels = torch.from_numpy(_squeeze_constant(uf.canonical(labels).numpy()))
    return labels.contiguous()


def _squeeze_constant(labels: np.ndarray) -> np.ndarray:
    """(numpy: these are small arrays, where each torch op costs several times more)"""
    for d in range(labels.ndim):
        if labels.shape[d] > 1:
            first = labels[(slice(None),) * d + (slice(0, 1),)]
            if (labels == first).all():
                labels = first
    return labels


def labelled(labels: torch.Tensor) -> bool:
    """Whether any position carries a channel label."""
    return labels.numel() > 0 and int(labels.numpy().max()) >= 0


def free(rank: int) -> torch.Tensor:
    return torch.full((1,) * rank, NO_LABEL, dtype=torch.long)


@dataclass
class Slice:
    """Labels along one dim of a parameter or buffer (dim None: labels of every element)."""

    tensor: str
    dim: int | None
    labels: torch.Tensor
    consumes: bool = False  # a layer's input channels (weight columns), not produced or normalised ones


@dataclass
class LabelState:
    uf: UnionFind = field(default_factory=UnionFind)
    slices: list[Slice] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    approximate: set[int] = field(default_factory=set)  # labels normalised together (LayerNorm)
    attention: set[int] = field(default_factory=set)  # labels of attention heads
    warnings: list[str] = field(default_factory=list)
    whole: list[tuple[torch.Tensor, tuple[int, ...], str, torch.Tensor | None]] = field(default_factory=list)
    grids: list[torch.Tensor] = field(default_factory=list)  # [rows, inner] label grids of split views
    normalised_rows: list[torch.Tensor] = field(default_factory=list)  # grids with a statistic per row
    shared: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (grid, labels per inner index)
    heads: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # attention module -> label per head

    def require_whole(self, labels: torch.Tensor, dims, reason: str, free: torch.Tensor | None = None) -> None:
        """Along `dims`, a unit may remove all of a row or none of it (a fixed slice, a constant
        operand spanning those dims). Checked once every join is known (`settle`): attention joins
        a head's channels after rotary embeddings have sliced them, for example. With one dim,
        `free` (a bool per index) marks the positions removals may take anyway: those a slice
        counted from the other end still finds (see rules._slice_regions)."""
        dims = tuple(d for d in dims if labels.shape[d] > 1)
        if dims and not self.muted and labelled(labels):
            self.whole.append((labels, dims, reason, free))

    def share(self, rows: torch.Tensor, inner: torch.Tensor) -> None:
        """`inner[j]` (a norm's weight, a statistic) is shared by column j of every row of a channel
        grid ([heads, head_dim]: QK-norm over each head): whole rows may go without it; if instead
        the same inner index goes from every row, `inner[j]` goes with it. Settled in `settle`."""
        self.grids.append(rows)
        self.shared.append((rows, inner))

    def settle(self) -> None:
        """Resolve the deferred constraints: a split channel grid whose rows are not each one unit
        loses the same inner index from every row (and what is shared per inner index goes with
        it); then block the rows of every `require_whole` that more than one unit would cut."""
        across = set()  # grids whose inner indices go from every row
        for rows in self.grids:
            resolved = self.uf.canonical(rows)
            if bool((resolved != resolved[:, :1]).any()):
                across.add(id(rows))
                self.uf.union_tensors(rows[0], rows[1:])
        for rows, inner in self.shared:
            if id(rows) in across:
                self.uf.union_tensors(rows[0], inner)
        for rows in self.normalised_rows:  # whole rows going leave the other rows' statistics as they were
            if id(rows) in across:
                self.approximate.update(torch.unique(rows[rows >= 0]).tolist())
        self.grids.clear()
        self.shared.clear()
        self.normalised_rows.clear()
        blocked = set(self.uf.canonical(torch.tensor(sorted(self.blocked), dtype=torch.long)).tolist())
        for labels, dims, reason, free in self.whole:
            resolved = self.uf.canonical(labels)
            if blocked and set(torch.unique(resolved[resolved >= 0]).tolist()) <= blocked:
                continue  # already kept whole for another reason
            rest = [d for d in range(labels.dim()) if d not in dims]
            rows = resolved.permute(*rest, *dims).reshape(-1, int(torch.Size([labels.shape[d] for d in dims]).numel()))
            cut = (rows != rows[:, :1]).any(1)
            if cut.any():  # units removing positions along `dims`: only free positions may go
                self.block(rows[cut] if free is None else rows[cut][:, ~free], reason)
        self.whole.clear()

    muted: bool = False  # while analysing values no output uses: their ops constrain nothing

    def block(self, labels: torch.Tensor, reason: str | None = None) -> None:
        if self.muted:
            return
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
            self.uf.union_tensors(first, labels[1:])
            mixed = (labels < 0).any(0) & (labels >= 0).any(0)
            if mixed.any():
                self.block(labels[:, mixed])
            first = torch.where(first >= 0, first, labels.max(0).values)
        return self.uf.canonical(first)
