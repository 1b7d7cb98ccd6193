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
        self._tensors: dict[str, tuple[nn.Module, str]] = {}
        for group in groups:
            for m in group.members:
                if m.tensor not in self._tensors:
                    path, _, attr = m.tensor.rpartition(".")
                    self._tensors[m.tensor] = (model.get_submodule(path), attr)
        self.module = model.get_submodule(groups[0].producers[0])
        self._refs = [TensorRef(t.rpartition(".")[0], mod, attr) for t, (mod, attr) in self._tensors.items()
                      if isinstance(getattr(mod, attr), nn.Parameter)]

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

    def _ref_key(self, ref: TensorRef) -> str:
        return f"{ref.name}.{ref.param_name}" if ref.name else ref.param_name

    # --- scores -----------------------------------------------------------------------------
    def unit_scores_from(self, member_scores, reduce):
        """Each member tensor's slice scores (reduced per unit), normalised by their mean over the
        layer's units so that no tensor dominates, summed over member tensors."""
        if reduce not in REDUCTIONS:
            raise ConfigError(f"reduce: {reduce!r} is not one of {', '.join(REDUCTIONS)}")
        total = torch.zeros(self.num_units)
        for per_unit, present in self._per_tensor(member_scores, reduce):
            values = per_unit[present]
            finite = values[torch.isfinite(values)]  # -inf marks units a metric puts first (random)
            scale = finite.abs().mean() if finite.numel() else values.new_ones(())
            total[present] += values / (scale if scale > 0 else 1.0)
        return total

    def unit_sums(self, member_values):
        total = torch.zeros(self.num_units)
        for per_unit, _ in self._per_tensor(member_values, "sum"):
            total = total + per_unit
        return total

    def _per_tensor(self, member_values, reduce):
        """(per-unit value, units present) of each member tensor's slices; differentiable."""
        for ref, elem in zip(self._refs, member_values):
            per_unit = torch.zeros(self.num_units)
            present = torch.zeros(self.num_units, dtype=torch.bool)
            for dim, (indices, segment, unit) in self._slice_plan().get(self._ref_key(ref), {}).items():
                rows = elem.movedim(dim, 0).reshape(elem.shape[dim], -1).float()
                n = len(unit)
                if reduce == "max":
                    value = torch.full((n,), float("-inf")).scatter_reduce(0, segment, rows.amax(1)[indices], "amax")
                else:
                    value = torch.zeros(n).index_add(0, segment, rows.sum(1)[indices])
                    if reduce == "mean":
                        value = value / (torch.zeros(n).index_add_(0, segment, torch.ones(len(segment))) * rows.shape[1])
                per_unit = per_unit.index_add(0, unit, value)
                present[unit] = True
            if present.any():
                yield per_unit, present

    def _slice_plan(self) -> dict[str, dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
        """Per member tensor and dim: every member's indices concatenated, the member each index
        belongs to, and each member's unit (built once; scoring is then a few scatter ops)."""
        if getattr(self, "_plan", None) is None:
            parts: dict[str, dict[int, list]] = {}
            for u, group in enumerate(self.groups):
                for m in group.members:
                    parts.setdefault(m.tensor, {}).setdefault(m.dim, []).append((u, m.indices))
            self._plan = {}
            for key, dims in parts.items():
                self._plan[key] = {}
                for dim, members in dims.items():
                    sizes = torch.tensor([len(idx) for _, idx in members])
                    self._plan[key][dim] = (torch.cat([idx for _, idx in members]),
                                            torch.repeat_interleave(torch.arange(len(members)), sizes),
                                            torch.tensor([u for u, _ in members]))
        return self._plan

    # --- masks and counts ------------------------------------------------------------------
    def _is_pruned(self, group) -> bool:
        """A group is pruned when the first masked tensor it touches has its slice fully masked."""
        for m in group.members:
            module, attr = self._tensors[m.tensor]
            mask = get_mask(module, attr)
            if mask is not None:
                return not bool(mask.movedim(m.dim, 0)[m.indices].any())
        return False

    def current_pruned(self) -> torch.Tensor:
        return torch.tensor([self._is_pruned(g) for g in self.groups], dtype=torch.bool)

    def masks(self, pruned, member_scores=None):
        keeps: dict[tuple[nn.Module, str], torch.Tensor] = {}
        for u in pruned.nonzero().reshape(-1).tolist():
            for m in self.groups[u].members:
                module, attr = self._tensors[m.tensor]
                tensor = getattr(module, attr)
                if not isinstance(tensor, nn.Parameter):
                    continue  # buffers (BN statistics) are sliced by speed_up, not masked
                key = (module, attr)
                if key not in keeps:
                    keeps[key] = torch.ones(tensor.shape, dtype=torch.bool, device=tensor.device)
                keeps[key].index_fill_(m.dim, m.indices.to(tensor.device), False)
        return keeps

    def removals(self, pruned):
        out = []
        for u in pruned.nonzero().reshape(-1).tolist():
            for m in self.groups[u].members:
                module, attr = self._tensors[m.tensor]
                tensor = getattr(module, attr)
                if isinstance(tensor, nn.Parameter):
                    out.append(Removal(module, attr, m.dim, m.indices.numel(), tensor.shape[m.dim]))
        return out

    def kept_and_total(self):
        return self.num_units - int(self.current_pruned().sum()), self.num_units


@register_target("channel")
@dataclass
class Channel(Target):
    """Coupled channels of any traceable model (units: coupled channel groups).

    A group is pruned only if every module producing its channels is selected (module types —
    Linear, ConvNd and ConvTransposeNd by default, Embedding on request — and include/exclude). Outputs of the model never change shape; `round_to` keeps each layer's
    channel count a multiple of k; no layer loses all its channels.
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
        return GroupLayer(name, model, groups, self.round_to)

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
