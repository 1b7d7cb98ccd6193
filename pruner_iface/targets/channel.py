"""`channel`: coupled channel groups found by the dependency graph (pruner_iface.graph).

A unit is one coupled channel: the producer's output row and every slice that must go with it —
BatchNorm entries, consumer input columns, the matching channel across residual adds, the offset
slice after a concat, the H·W features a channel becomes after flatten. A layer is the set of
units produced by the same producer modules (e.g. a whole residual stream). Masking every member
slice makes the masked model compute what the shrunk model will.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from ..accounting import Removal
from ..errors import ConfigError
from ..masks import get_mask
from ..registry import check
from ..selection import select_modules
from ..selection_ops import lowest_k
from .base import REDUCTIONS, Target, TargetLayer, register_target


@dataclass
class TensorRef:
    """A parameter that a metric scores: `name` is its module path."""

    name: str
    module: nn.Module
    param_name: str

    @property
    def weight(self) -> torch.Tensor:
        return getattr(self.module, self.param_name)


@dataclass(eq=False)
class LayerColumn:
    """The part of one graph column (a tensor dim) that a layer's units own: positions `idx`
    along `dim` and the unit of each."""

    tensor: str
    module: nn.Module
    attr: str
    dim: int
    idx: torch.Tensor
    unit: torch.Tensor
    consumes: bool

    @property
    def is_parameter(self) -> bool:
        return isinstance(getattr(self.module, self.attr), nn.Parameter)


class GroupLayer(TargetLayer):
    """Units are coupled channel groups sharing the same producer modules."""

    structured = True

    def __init__(self, name: str, model: nn.Module, groups: list, round_to: int):
        self.name = name
        self.groups = groups
        self.round_to = round_to
        self.num_units = len(groups)
        self.unit_weights = 1
        self.param_name = "weight"
        self.columns = _layer_columns(model, groups)
        self.module = model.get_submodule(groups[0].producers[0])
        self._ref_of: dict[str, TensorRef] = {}  # parameter name -> its ref
        self._columns_of: dict[str, list[LayerColumn]] = {}
        for c in self.columns:
            if c.is_parameter and c.tensor not in self._ref_of:
                self._ref_of[c.tensor] = TensorRef(c.tensor.rpartition(".")[0], c.module, c.attr)
            self._columns_of.setdefault(c.tensor, []).append(c)
        self._refs = list(self._ref_of.values())

    # --- views ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (self.num_units,)

    @property
    def max_units(self) -> int:
        return self.num_units - self.round_to if self.num_units > self.round_to else 0

    def legal_count(self, count: int) -> int:
        if self.round_to == 1 or count == 0:
            return count
        kept = self.num_units - count
        kept = max(self.round_to, (kept // self.round_to) * self.round_to) if self.num_units >= self.round_to else kept
        return min(self.num_units - kept, self.max_units)

    def members(self) -> list[TensorRef]:
        return self._refs

    def slices_per_unit(self) -> list[list[tuple[TensorRef, int, torch.Tensor, bool]]]:
        """Per unit, the (TensorRef, dim, indices, consumes) of every parameter slice it covers."""
        out: list[list] = [[] for _ in range(self.num_units)]
        for c in self.columns:
            if c.tensor not in self._ref_of:
                continue
            order = torch.argsort(c.unit, stable=True)
            units, counts = torch.unique_consecutive(c.unit[order], return_counts=True)
            for u, positions in zip(units.tolist(), torch.split(c.idx[order], counts.tolist())):
                out[u].append((self._ref_of[c.tensor], c.dim, positions, c.consumes))
        return out

    # --- scores -----------------------------------------------------------------------------
    def unit_scores_from(self, member_scores, reduce, normalize=True):
        """Each member tensor's slice scores (reduced per unit), normalised by their mean over the
        layer's units so that no tensor dominates, summed over member tensors. Without
        `normalize` (metrics whose scores estimate a loss change) the raw sums are kept, so that
        units of different layers and kinds stay comparable."""
        if reduce not in REDUCTIONS:
            raise ConfigError(f"reduce: {reduce!r} is not one of {', '.join(REDUCTIONS)}")
        total = torch.zeros(self.num_units)
        for per_unit, present in self._per_tensor(member_scores, reduce):
            values = per_unit[present]
            finite = values[torch.isfinite(values)]  # -inf marks units a metric puts first (random)
            scale = finite.abs().mean() if finite.numel() and normalize else values.new_ones(())
            total[present] += values / (scale if scale > 0 else 1.0)
        return total

    def unit_sums(self, member_values):
        total = torch.zeros(self.num_units)
        for per_unit, _ in self._per_tensor(member_values, "sum"):
            total = total + per_unit
        return total

    def _per_tensor(self, member_values, reduce):
        """(per-unit value, units present) of each member tensor's slices; differentiable. A unit's
        slice in one column is reduced on its own, then summed over the columns of the tensor."""
        n = self.num_units
        for key, elem in zip(self._ref_of, member_values):
            per_unit = torch.zeros(n)
            present = torch.zeros(n, dtype=torch.bool)
            for c in self._columns_of[key]:
                rows = elem.movedim(c.dim, 0).reshape(elem.shape[c.dim], -1).float()
                if reduce == "max":
                    hit = torch.zeros(n, dtype=torch.bool)
                    hit[c.unit] = True
                    value = torch.full((n,), float("-inf")).scatter_reduce(0, c.unit, rows.amax(1)[c.idx], "amax")
                    value = torch.where(hit, value, torch.zeros(()))
                else:
                    value = torch.zeros(n).index_add(0, c.unit, rows.sum(1)[c.idx])
                    if reduce == "mean":
                        count = torch.zeros(n).index_add_(0, c.unit, torch.ones(len(c.unit))) * rows.shape[1]
                        value = value / count.clamp_min(1)
                per_unit = per_unit + value
                present[c.unit] = True
            if present.any():
                yield per_unit, present

    # --- masks and counts ------------------------------------------------------------------
    def current_pruned(self) -> torch.Tensor:
        """A unit is pruned when the first masked tensor it touches has its slice fully masked."""
        decided = torch.zeros(self.num_units, dtype=torch.bool)
        pruned = torch.zeros(self.num_units, dtype=torch.bool)
        for c in self.columns:
            mask = get_mask(c.module, c.attr)
            if mask is None:
                continue
            kept_any = mask.movedim(c.dim, 0).reshape(mask.shape[c.dim], -1).any(1)[c.idx.to(mask.device)].cpu()
            unit_kept = torch.zeros(self.num_units, dtype=torch.bool).index_put_((c.unit,), kept_any, accumulate=True)
            here = torch.zeros(self.num_units, dtype=torch.bool)
            here[c.unit] = True
            new = here & ~decided
            pruned[new] = ~unit_kept[new]
            decided |= here
            if bool(decided.all()):
                break
        return pruned

    def masks(self, pruned, member_scores=None):
        keeps: dict[tuple[nn.Module, str], torch.Tensor] = {}
        for c in self.columns:
            if not c.is_parameter:
                continue  # buffers (BN statistics) are sliced by speed_up, not masked
            drop = pruned[c.unit]
            if not bool(drop.any()):
                continue
            tensor = getattr(c.module, c.attr)
            key = (c.module, c.attr)
            if key not in keeps:
                keeps[key] = torch.ones(tensor.shape, dtype=torch.bool, device=tensor.device)
            keeps[key].index_fill_(c.dim, c.idx[drop].to(tensor.device), False)
        return keeps

    def removals(self, pruned):
        out = []
        for c in self.columns:
            if c.is_parameter:
                removed = int(pruned[c.unit].sum())
                if removed:
                    out.append(Removal(c.module, c.attr, c.dim, removed, getattr(c.module, c.attr).shape[c.dim]))
        return out

    def kept_and_total(self):
        return self.num_units - int(self.current_pruned().sum()), self.num_units


def _layer_columns(model: nn.Module, groups: list) -> list[LayerColumn]:
    """The positions of the graph's columns that belong to `groups`, with the unit of each. A
    tensor used twice (a module called twice) has a column per use; each position is kept once,
    so that it is counted and scored once."""
    columns = groups[0].columns
    top = max((int(c.labels.max()) for c in columns if c.labels.numel()), default=-1) + 1
    unit_of = torch.full((max(top, 1),), -1, dtype=torch.long)
    labels = torch.tensor([g.label for g in groups], dtype=torch.long)
    unit_of[labels[labels < top]] = torch.arange(len(groups))[labels < top]
    owners: dict[str, tuple[nn.Module, str]] = {}
    seen: dict[tuple[str, int], torch.Tensor] = {}  # positions already owned, per (tensor, dim)
    out = []
    for c in columns:
        units = torch.where(c.labels >= 0, unit_of[c.labels.clamp_min(0)], -1)
        taken = seen.setdefault((c.tensor, c.dim), torch.zeros(len(units), dtype=torch.bool))
        idx = ((units >= 0) & ~taken).nonzero().reshape(-1)
        if not idx.numel():
            continue
        taken[idx] = True
        if c.tensor not in owners:
            path, _, attr = c.tensor.rpartition(".")
            owners[c.tensor] = (model.get_submodule(path), attr)
        module, attr = owners[c.tensor]
        out.append(LayerColumn(c.tensor, module, attr, c.dim, idx, units[idx], c.consumes))
    return out


class BalancedHeadLayer(GroupLayer):
    """Query heads of a grouped-query attention: every key/value group loses as many as the others
    and keeps at least one, so the query heads per key/value head stay equal."""

    free_choice = False

    def __init__(self, name: str, model: nn.Module, groups: list, kv_groups: list[int]):
        super().__init__(name, model, groups, round_to=1)
        ids = sorted(set(kv_groups))
        self.kv = torch.tensor([ids.index(g) for g in kv_groups])
        self.n_groups = len(ids)
        self.per_group = self.num_units // self.n_groups

    @property
    def max_units(self) -> int:
        return (self.per_group - 1) * self.n_groups

    def legal_count(self, count: int) -> int:
        return min(self.max_units, -(-count // self.n_groups) * self.n_groups)  # rounded up to whole rounds

    def choose(self, scores: torch.Tensor, count: int) -> torch.Tensor:
        pruned = torch.zeros(self.num_units, dtype=torch.bool)
        for g in range(self.n_groups):
            members = (self.kv == g).nonzero().reshape(-1)
            pruned[members[lowest_k(scores[members], count // self.n_groups)]] = True
        return pruned


@register_target("channel")
@dataclass
class Channel(Target):
    """Coupled channels of any traceable model (units: coupled channel groups).

    A group is pruned only if every module producing its channels is selected (module types —
    Linear, ConvNd and ConvTransposeNd by default, Embedding on request — and include/exclude). Outputs of the model never change shape; `round_to` keeps each layer's
    channel count a multiple of k (layers of attention heads count whole heads, unrounded); no layer loses all its
    channels.
    """

    module_types: Sequence[Any] = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
                                   "ConvTranspose3d")
    round_to: int = 1
    tracer: str = "auto"

    protect_outputs: ClassVar[bool] = True  # channels reaching a model output are kept
    unit_kind: ClassVar[str] = "channel group"

    supported_types = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                       nn.ConvTranspose3d, nn.Embedding)
    structured = True

    def __post_init__(self) -> None:
        check(isinstance(self.round_to, int) and self.round_to >= 1, "round_to",
              f"must be a positive integer; got {self.round_to!r}")
        from ..graph.trace import TRACERS

        check(self.tracer in TRACERS, "tracer", f"must be one of {', '.join(TRACERS)}; got {self.tracer!r}")
        super().__post_init__()

    def bind(self, model: nn.Module, include=None, exclude=None, example_inputs: Any = None) -> list[TargetLayer]:
        if example_inputs is None:
            raise ConfigError("the channel target needs example_inputs to trace the model")
        from ..graph import build_dependency_graph

        selected = {name for name, _ in select_modules(model, self._types, include, exclude)}
        graph = build_dependency_graph(model, example_inputs, tracer=self.tracer,
                                       protect_outputs=self.protect_outputs, **self.graph_options())
        by_producers: dict[tuple[str, ...], list] = {}
        for group in graph.groups:
            if self.wants(group) and all(p in selected for p in group.producers):
                by_producers.setdefault(group.producers, []).append(group)
        layers = [self.make_layer("+".join(key), model, groups, graph)
                  for key, groups in by_producers.items() if len(groups) > 1]
        if not layers:
            raise ConfigError(f"the {self.registered_name} target found no prunable {self.unit_kind} among the selected modules"
                              + (f" (graph: {'; '.join(graph.warnings[:3])})" if graph.warnings else ""))
        self.graph = graph
        self._example_inputs = example_inputs
        return layers

    def wants(self, group) -> bool:
        """Which kind of coupled group this target prunes (all, for `channel`)."""
        return True

    def graph_options(self) -> dict:
        return {}

    def make_layer(self, name: str, model: nn.Module, groups: list, graph) -> TargetLayer:
        """Query heads sharing key/value heads (grouped-query attention, units per query head) are
        pruned evenly per key/value head, whichever target found them; other groups freely."""
        kv_of = {label: kv for site in graph.heads.values() for label, kv in zip(site.labels, site.kv_groups)}
        kv_groups = [kv_of.get(g.label) for g in groups]
        shared = None not in kv_groups and len(set(kv_groups)) < len(groups)
        if shared and self.graph_options().get("gqa", "query") == "query":
            if len(groups) % len(set(kv_groups)):
                raise ConfigError(f"attention {name!r}: {len(groups)} query heads cannot be split evenly over "
                                  f"{len(set(kv_groups))} key/value heads")
            return BalancedHeadLayer(name, model, groups, kv_groups)
        # a head is already head_dim channels: rounding the number of heads would only forbid pruning a
        # layer of fewer heads than round_to
        return GroupLayer(name, model, groups, 1 if groups[0].attention else self.round_to)

    def report_notes(self, layers):
        approximate = sum(int(p) for layer in layers for g, p in zip(layer.groups, layer.current_pruned())
                          if g.approximate)
        notes = {"tracer": self.graph.traced.tracer, "graph_warnings": list(self.graph.warnings),
                 "pruned_groups_normalised_with_kept_channels": approximate}
        if getattr(self, "_difference", None) is not None:
            notes["speed_up_max_relative_difference"] = self._difference
        return notes

    def speed_up(self, model, layers):
        from ..speedup.graph import shrink_groups

        pruned = [g for layer in layers for g, p in zip(layer.groups, layer.current_pruned()) if p]
        kept: dict[str, set[int]] = {"intermediate": set(), "hidden": set()}
        for layer in layers:
            group = layer.groups[0]
            kind = None if group.attention else "hidden" if group.approximate else "intermediate"
            if kind:
                kept[kind].add(layer.num_units - int(layer.current_pruned().sum()))
        widths = {kind: sizes.pop() for kind, sizes in kept.items() if len(sizes) == 1}
        self._difference = shrink_groups(model, pruned, self._example_inputs, self.graph.heads, self.graph.outputs,
                                         widths)
        return model
