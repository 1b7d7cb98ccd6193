"""Propagate channel labels through a traced model and collect the coupled channel groups."""
from __future__ import annotations

import contextlib
import gc
import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.utils import _pytree as pytree

from ..errors import InputError
from .labels import LabelState, Slice, free, labelled
from .rules import RULES
from .trace import TracedModel, module_path, op_name, trace
from .uniform import Uniform, meet_uniform, uniform_dims


_COPIES = ("lift_fresh", "lift_fresh_copy", "clone", "_to_copy", "to", "detach", "detach_", "alias", "contiguous")


class Propagation:
    """The context rules see: labels, shapes and parameter names of fx nodes."""

    def __init__(self, traced: TracedModel, protect_outputs: bool = True, gqa: str = "query"):
        self.traced = traced
        self.protect_outputs = protect_outputs
        self.gqa = gqa  # grouped-query attention units: "query" heads, or "kv" heads with their query heads
        self.outputs: list[torch.Tensor] = []  # labels of each output tensor, in order
        self.state = LabelState()
        self.values: dict[str, Any] = {}
        self.uniform: dict[str, Uniform] = {}  # per node, its uniform dims (graph/uniform.py)

    def shape(self, arg: fx.Node) -> tuple[int, ...]:
        val = arg.meta.get("val")
        return tuple(val.shape) if isinstance(val, torch.Tensor) else ()

    def extent(self, arg: fx.Node) -> tuple[int, ...]:
        """The shape, with size 1 along uniform dims: the positions a tensor really holds."""
        uniform = self.uniform.get(arg.name, {})
        return tuple(1 if d in uniform else s for d, s in enumerate(self.shape(arg)))

    def tensor_name(self, arg: Any) -> str | None:
        return self.traced.tensors.get(arg.name) if isinstance(arg, fx.Node) else None

    def op(self, node: fx.Node) -> str:
        return op_name(node)

    def constant(self, arg: Any) -> torch.Tensor | None:
        """The value of a tensor fixed at trace time (an index written in forward), through copies."""
        while isinstance(arg, fx.Node):
            if arg.name in self.traced.constant_values:
                return self.traced.constant_values[arg.name]
            if arg.op != "call_function" or op_name(arg) not in _COPIES:
                return None
            arg = arg.args[0]
        return None

    def module(self, node: fx.Node) -> str:
        return module_path(node) or "<top level>"

    def labels(self, arg: Any) -> Any:
        if not isinstance(arg, fx.Node):
            return free(0)
        if arg.name not in self.values:
            name = self.traced.tensors.get(arg.name)
            shape = self.shape(arg)
            val = arg.meta.get("val")
            if name not in self.traced.parameters or not (isinstance(val, torch.Tensor) and val.is_floating_point()):
                # buffers used as data (rotary frequencies, position ids) and constants: no labels
                self.values[arg.name] = free(len(shape))
            else:  # a parameter used as data (layer scale, tokens): a label per element
                labels = self.state.uf.fresh(max(1, int(torch.Size(shape).numel()))).reshape(shape)
                self.state.slices.append(Slice(name, None, labels))
                self.values[arg.name] = labels
        return self.values[arg.name]

    def run(self) -> LabelState:
        live = self._live()
        for node in self.traced.fx_graph.nodes:
            if node.op == "call_function":
                # a value no output uses still runs, so it constrains channels like any other; only inside
                # nn.MultiheadAttention, whose forward speed_up replaces, do dead values (attention
                # weights computed, then dropped) block nothing
                self.state.muted = node.name not in live and self._rewritten(node)
                self.values[node.name] = self._apply(node)
                self._pass_uniform(node)
                self.state.muted = False
            elif node.op == "output":
                for leaf in pytree.tree_leaves(node.args):
                    labels = self.labels(leaf) if isinstance(leaf, fx.Node) else free(0)
                    self.outputs.append(labels if isinstance(labels, torch.Tensor) else free(0))
                    if self.protect_outputs:
                        for one in pytree.tree_leaves(labels):
                            self.state.block(one)
                        for vector in self.uniform.get(getattr(leaf, "name", None), {}).values():
                            self.state.block(vector)
        return self.state

    def _pass_uniform(self, node: fx.Node) -> None:
        """Record the node's uniform dims and join (or pin) the uniform dims of its inputs."""
        found = uniform_dims(node, self)
        meet_uniform(node, self, found)
        if found:
            self.uniform[node.name] = found

    def _rewritten(self, node: fx.Node) -> bool:
        """Inside a module whose forward speed_up replaces: its dead values never run shrunk."""
        stack = node.meta.get("nn_module_stack") or {}
        return any(path in self.traced.rewritten for path, _ in stack.values())

    def _live(self) -> set[str]:
        """Nodes some output depends on."""
        output = next(n for n in reversed(self.traced.fx_graph.nodes) if n.op == "output")
        live, stack = set(), [output]
        while stack:
            node = stack.pop()
            for arg in node.all_input_nodes:
                if arg.name not in live:
                    live.add(arg.name)
                    stack.append(arg)
        return live

    def _apply(self, node: fx.Node):
        name = op_name(node)
        fn = RULES.get(name)
        if fn is not None:
            try:
                return fn(node, self)
            except Exception as exc:  # a rule that cannot handle this use blocks, like an unknown op
                reason = f"{node.target} in module {module_path(node)!r} could not be analysed ({type(exc).__name__}: {exc})"
                return self.unknown(node, reason)
        return self.unknown(node, f"op {node.target} (module {module_path(node)!r}) is not understood")

    def unknown(self, node: fx.Node, reason: str):
        touched = False
        for arg in node.all_input_nodes:
            for labels in pytree.tree_leaves(self.labels(arg)):
                if isinstance(labels, torch.Tensor) and labelled(labels):
                    touched = True
                    self.state.block(labels)
        if touched and not self.state.muted and reason not in self.state.warnings:
            self.state.warnings.append(reason + "; the channels reaching it are not pruned")
        val = node.meta.get("val")
        if isinstance(val, (list, tuple)):
            return [free(v.dim()) if isinstance(v, torch.Tensor) else free(0) for v in val]
        return free(val.dim() if isinstance(val, torch.Tensor) else 0)


@dataclass
class Member:
    """The slice of one parameter or buffer that a unit removes: `indices` along `dim`."""

    tensor: str
    dim: int
    indices: torch.Tensor
    consumes: bool = False  # input columns of a layer that reads the unit (its output reaches them)


@dataclass(eq=False)
class Column:
    """One dim of a parameter or buffer with the group label of each index along it (-1: none).

    The graph keeps its groups' slices as these columns, one per (tensor, dim) use, rather than
    a list of slices per group: a wide model has hundreds of thousands of (group, slice) pairs,
    and targets score, mask and count whole columns with a few scatter ops instead."""

    tensor: str
    dim: int
    labels: torch.Tensor
    consumes: bool = False


@dataclass(eq=False, slots=True)
class ChannelGroup:
    """One coupled unit: every slice that goes when it goes (`members`, read from the graph's columns)."""

    producers: tuple[str, ...]
    approximate: bool = False  # normalised together with other channels (LayerNorm, RMSNorm)
    attention: bool = False    # an attention head (or a key/value head with its query heads)
    label: int = -1            # its class in the analysis (see DependencyGraph.heads)
    columns: list[Column] = field(default_factory=list, repr=False)  # the graph's, shared by every group

    @property
    def members(self) -> list[Member]:
        out = []
        for c in self.columns:
            idx = (c.labels == self.label).nonzero().reshape(-1)
            if idx.numel():
                out.append(Member(c.tensor, c.dim, idx, c.consumes))
        return out


@dataclass
class AttentionHeads:
    """The query heads of one attention module: each one's group label (-1: not prunable) and
    the key/value head it reads (grouped-query attention; one per query head otherwise)."""

    labels: list[int]
    kv_groups: list[int]


@dataclass
class DependencyGraph:
    traced: TracedModel
    groups: list[ChannelGroup]
    columns: list[Column] = field(default_factory=list)  # every group's slices (see Column)
    warnings: list[str] = field(default_factory=list)
    heads: dict[str, AttentionHeads] = field(default_factory=dict)  # per attention module
    outputs: list[torch.Tensor] = field(default_factory=list)  # group label per position of each output


def build_dependency_graph(model: nn.Module, example_inputs: Any, warn: bool = True,
                           tracer: str = "auto", protect_outputs: bool = True, gqa: str = "query") -> DependencyGraph:
    """Trace `model` (see `trace` for `tracer`) and find its coupled channel groups (units of the
    `channel` target). With `protect_outputs`, channels that reach a model output are kept;
    `gqa` says what a unit of grouped-query attention is (see graph/attention.py)."""
    if gqa not in ("query", "kv"):
        raise InputError(f"gqa must be 'query' (query heads, evenly per key/value group) or 'kv' (a key/value "
                         f"head with its query heads); got {gqa!r}")
    with _collector_paused():
        return _build(model, example_inputs, warn, tracer, protect_outputs, gqa)


@contextlib.contextmanager
def _collector_paused():
    """The build makes tens of thousands of small objects (fx nodes, groups) and frees them in
    one piece; Python's cyclic collector would walk the whole heap several times meanwhile
    (ViT-B/16: 0.15 s of a 0.3 s analysis, in some builds and not others)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(model: nn.Module, example_inputs: Any, warn: bool, tracer: str, protect_outputs: bool,
           gqa: str) -> DependencyGraph:
    traced = trace(model, example_inputs, tracer)
    propagation = Propagation(traced, protect_outputs, gqa)
    state = propagation.run()
    _join_repeated_uses(state)
    state.settle()
    roots = state.uf.roots()
    blocked, approximate, attention = (_roots_of(labels, roots) for labels in
                                       (state.blocked, state.approximate, state.attention))
    producer_of, producer_names = _producers(state, roots)
    columns = [Column(s.tensor, dim, labels, s.consumes) for s in state.slices for dim, labels in _slice_dims(s, roots)]
    groups = _groups(state.uf.size, columns, producer_of, producer_names, blocked, approximate, attention)
    outputs = [torch.where(x >= 0, roots[x.clamp_min(0)], -1) for x in propagation.outputs]
    heads = {}
    for module, per_op in state.heads.items():
        labels, kv_groups = max(per_op, key=lambda entry: len(entry[0]))
        heads[module] = AttentionHeads(torch.where(labels >= 0, roots[labels.clamp_min(0)], -1).tolist(), kv_groups)
    if warn:
        for message in state.warnings:
            warnings.warn(f"pruner_iface graph: {message}", stacklevel=3)
    return DependencyGraph(traced, groups, columns, list(state.warnings), heads, outputs)


def _roots_of(labels: set[int], roots: torch.Tensor) -> set[int]:
    if not labels:
        return set()
    return set(np.unique(roots.numpy()[np.fromiter(labels, dtype=np.int64, count=len(labels))]).tolist())


def _marks(size: int, labels) -> np.ndarray:
    mark = np.zeros(size, dtype=bool)
    mark[np.fromiter(labels, dtype=np.int64, count=len(labels))] = True
    return mark


def _groups(size: int, columns: list[Column], producer_of: np.ndarray, producer_names: list[tuple[str, ...]],
            blocked: set[int], approximate: set[int], attention: set[int]) -> list[ChannelGroup]:
    """A group per class root that some column holds, some module produces and nothing blocks."""
    keep = np.zeros(size, dtype=bool)
    for c in columns:
        held = c.labels.numpy()
        keep[held[held >= 0]] = True
    keep &= (producer_of >= 0) & ~_marks(size, blocked)
    roots = np.flatnonzero(keep)
    return list(map(ChannelGroup, map(producer_names.__getitem__, producer_of[roots].tolist()),
                    _marks(size, approximate)[roots].tolist(), _marks(size, attention)[roots].tolist(),
                    roots.tolist(), itertools.repeat(columns, len(roots))))


def _producers(state: LabelState, roots: torch.Tensor) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Per class root, an index into the returned list of the sorted names of the modules whose
    outputs carry it (-1 for other labels); one tuple per combination, shared."""
    origin = state.uf.origin_of()
    made = np.flatnonzero(origin >= 0)
    owner, index = roots.numpy()[made], origin[made]
    names = state.uf.origins
    low, high = np.full(len(origin), len(names)), np.full(len(origin), -1)
    np.minimum.at(low, owner, index)
    np.maximum.at(high, owner, index)
    out = np.where(low == high, high, -1)  # most classes come from one module: index = its own tuple
    listed = [(name,) for name in names]
    mixed = high > low
    if mixed.any():
        width = len(names)
        pairs = np.unique(owner[mixed[owner]] * width + index[mixed[owner]])
        owner, index = np.divmod(pairs, width)
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        ends = np.r_[starts[1:], len(owner)]
        combos: dict[tuple[int, ...], int] = {}
        for root, start, end in zip(owner[starts].tolist(), starts.tolist(), ends.tolist()):
            key = tuple(index[start:end].tolist())
            if key not in combos:
                combos[key] = len(listed)
                listed.append(tuple(sorted(names[i] for i in key)))
            out[root] = combos[key]
    return out, listed


def _join_repeated_uses(state: LabelState) -> None:
    """A module called twice, or a weight tied between modules, slices the same tensor index in
    several places: whatever removes that index removes it everywhere."""
    seen: dict[tuple[str, int], torch.Tensor] = {}
    for s in state.slices:
        if s.dim is None:
            continue
        key = (s.tensor, s.dim)
        if key in seen and seen[key].shape == s.labels.shape:
            first, other = seen[key], s.labels
            state.uf.union_tensors(first, other)
            pinned = (first < 0) != (other < 0)  # an index one use cannot remove
            if pinned.any():
                state.block(torch.where(first >= 0, first, other)[pinned])
            seen[key] = torch.where(first >= 0, first, other)
        else:
            seen[key] = s.labels


def _slice_dims(s: Slice, roots: torch.Tensor):
    """(dim, root per index along dim) for the dims of a slice that carry channels. A dim whose
    indices do not each map to one group (the token dim of a position embedding) is not a
    channel dim; if a group's elements are reachable through no dim at all, speed-up's check on
    the example inputs catches it."""
    labels = s.labels
    resolved = torch.where(labels >= 0, roots[labels.clamp_min(0)], torch.full_like(labels, -1))
    if s.dim is not None:
        yield s.dim, resolved
        return
    for dim in range(resolved.dim()):
        if resolved.shape[dim] <= 1:
            continue
        rows = resolved.movedim(dim, 0).reshape(resolved.shape[dim], -1)
        if bool((rows == rows[:, :1]).all()):
            yield dim, rows[:, 0]
