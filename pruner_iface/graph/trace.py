"""Trace a model once into an operator graph of ATen ops with module paths and shapes.

Three tracers give the same pre-dispatch op vocabulary, with module paths and parameter names,
so one set of coupling rules serves all (see docs/design/graph.md). A recording of a run on meta
tensors (graph/meta_trace.py) comes first: it costs less than one plain meta forward. Where it
cannot run the model (a value read in Python, an index list in forward), torch.export follows.
Where export fails too, make_fx on real tensors traces the path the example inputs take.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch
import torch.fx.traceback as fx_traceback
from torch import fx, nn
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils import _pytree as pytree

from ..errors import InputError
from ..inputs import describe_inputs, eval_mode, normalize_inputs, output_tensors
from .meta_trace import ModuleStack, trace_on_meta


class TraceError(InputError):
    """The model could not be traced into an operator graph."""


@dataclass
class TracedModel:
    fx_graph: fx.Graph
    graph: nx.DiGraph             # node name -> op, module, shape; edges follow data flow
    tensors: dict[str, str]       # placeholder name -> qualified parameter / buffer / constant name
    parameters: set[str]          # qualified names that are parameters
    user_inputs: list[str]        # placeholder names of the model's own inputs
    constants: set[str] = field(default_factory=set)  # plain tensor attributes (cannot be sliced)
    tracer: str = "torch.export"
    rewritten: set[str] = field(default_factory=set)  # modules whose forward speed_up replaces (nn.MultiheadAttention)
    constant_values: dict[str, torch.Tensor] = field(default_factory=dict)  # node name -> value of a traced constant


def op_name(node: fx.Node) -> str:
    target = node.target
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        return packet.__name__
    return getattr(target, "__name__", str(target))


def module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


TRACERS = ("auto", "meta", "export", "make_fx")


def trace(model: nn.Module, example_inputs: Any, tracer: str = "auto") -> TracedModel:
    """Trace `model` on `example_inputs` in eval mode (every submodule's mode restored).

    "auto" runs the model on meta tensors first, then tries torch.export where that fails, and
    falls back to make_fx on real tensors when export fails too (data-dependent control flow,
    .item() in forward): that trace follows the branch the example inputs take, so a warning
    says so. "meta", "export" and "make_fx" use one tracer only.
    """
    if tracer not in TRACERS:
        raise InputError(f"tracer must be one of {', '.join(TRACERS)}; got {tracer!r}")
    args, kwargs = normalize_inputs(example_inputs)
    traced = _trace_with(model, args, kwargs, tracer)
    traced.rewritten = {name for name, module in model.named_modules() if isinstance(module, nn.MultiheadAttention)}
    return traced


def _trace_with(model: nn.Module, args: tuple, kwargs: dict, tracer: str) -> TracedModel:
    if tracer == "make_fx":
        return _run(_trace_make_fx, "make_fx", model, args, kwargs)
    if tracer in ("meta", "auto"):
        try:
            return _run(_trace_meta, "meta", model, args, kwargs)
        except TraceError:
            if tracer == "meta":
                raise
    try:
        return _run(_trace_export, "torch.export", model, args, kwargs)
    except TraceError as export_error:
        if tracer == "export":
            raise
        try:
            traced = _run(_trace_make_fx, "make_fx", model, args, kwargs)
        except TraceError as fallback_error:
            raise TraceError(f"{export_error}; the make_fx fallback failed too: {fallback_error}") from fallback_error
        reason = str(export_error.__cause__ or export_error).splitlines()[0][:200]
        warnings.warn(f"pruner_iface graph: torch.export could not trace {type(model).__name__} ({reason}); "
                      "traced with make_fx on the example inputs instead, so data-dependent branches follow the "
                      "path these inputs take", stacklevel=3)
        return traced


@contextlib.contextmanager
def _no_stack_traces():
    """Tracers record a Python stack trace per node (a third of torch.export's time on ViT-B/16
    here); the analysis reads none, so where torch has the switch it is off while we trace."""
    config = getattr(fx, "config", None)
    previous = getattr(config, "do_not_emit_stack_traces", None)
    if previous is None:
        yield
        return
    config.do_not_emit_stack_traces = True
    try:
        yield
    finally:
        config.do_not_emit_stack_traces = previous


def _run(fn, name: str, model: nn.Module, args: tuple, kwargs: dict) -> TracedModel:
    try:
        with eval_mode(model), warnings.catch_warnings(), _no_stack_traces():
            warnings.simplefilter("ignore")
            return fn(model, args, kwargs)
    except Exception as exc:
        raise TraceError(
            f"{name} could not trace {type(model).__name__} on {describe_inputs(args, kwargs)}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


class _TensorOutputs(nn.Module):
    """The model with only the tensors of its output (Hugging Face caches are not outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return output_tensors(self.model(*args, **kwargs))


def _trace_export(model: nn.Module, args: tuple, kwargs: dict) -> TracedModel:
    exported = torch.export.export(_TensorOutputs(model), args, kwargs, strict=False)
    sig = exported.graph_signature
    inner = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
    constants = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {})
    tensors = {node: _unwrap(name) for node, name in {**inner, **constants}.items()}
    for node in exported.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if stack:
            node.meta["nn_module_stack"] = {key: (_unwrap(path), kind) for key, (path, kind) in stack.items()
                                            if path != "model"}
    traced = _traced(exported.graph, tensors, {_unwrap(n) for n in sig.inputs_to_parameters.values()},
                     list(sig.user_inputs), {_unwrap(n) for n in constants.values()}, "torch.export")
    traced.constant_values = {node: exported.constants[name] for node, name in constants.items()
                              if isinstance(exported.constants.get(name), torch.Tensor)}
    return traced


def _trace_meta(model: nn.Module, args: tuple, kwargs: dict) -> TracedModel:
    graph, tensors, parameters, user_inputs, constants, values = trace_on_meta(model, args, kwargs)
    traced = _traced(graph, tensors, parameters, user_inputs, constants, "meta")
    traced.constant_values = values
    return traced


def _unwrap(name: str) -> str:
    return name[len("model."):] if name.startswith("model.") else name


def _trace_make_fx(model: nn.Module, args: tuple, kwargs: dict) -> TracedModel:
    """make_fx over real tensors, with parameters and buffers as graph inputs (through
    functional_call) and module paths recorded by global forward hooks."""
    parameters = dict(model.named_parameters())
    state = {**parameters, **dict(model.named_buffers())}
    names = list(state)
    flat_inputs, spec = pytree.tree_flatten((args, kwargs))

    def run(*flat):
        call_args, call_kwargs = pytree.tree_unflatten(list(flat[len(names):]), spec)
        return output_tensors(torch.func.functional_call(model, dict(zip(names, flat[:len(names)])), call_args,
                                                         call_kwargs))

    with _ModulePaths(model):
        graph_module = make_fx(run, tracing_mode="real", pre_dispatch=True,
                               _error_on_data_dependent_ops=False)(*state.values(), *flat_inputs)
    placeholders = [n.name for n in graph_module.graph.nodes if n.op == "placeholder"]
    tensors = dict(zip(placeholders, names))
    traced = _traced(graph_module.graph, tensors, set(parameters), placeholders[len(names):], set(), "make_fx")
    traced.constant_values = {n.name: getattr(graph_module, n.target) for n in graph_module.graph.nodes
                              if n.op == "get_attr" and isinstance(getattr(graph_module, n.target, None), torch.Tensor)}
    return traced


class _ModulePaths(ModuleStack):
    """Records each traced node's module path (as torch.export's nn_module_stack does) while make_fx runs."""

    def __init__(self, model: nn.Module):
        super().__init__(model, lambda stack: fx_traceback.current_meta.__setitem__("nn_module_stack", stack))

    def __enter__(self):
        self._meta = fx_traceback.preserve_node_meta()
        self._meta.__enter__()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        fx_traceback.current_meta.pop("nn_module_stack", None)
        self._meta.__exit__(*exc)


def _traced(fx_graph: fx.Graph, tensors: dict[str, str], parameters: set[str], user_inputs: list[str],
            constants: set[str], tracer: str) -> TracedModel:
    graph = nx.DiGraph()
    for node in fx_graph.nodes:
        val = node.meta.get("val")
        graph.add_node(node.name, op=op_name(node) if node.op == "call_function" else node.op,
                       module=module_path(node), shape=tuple(val.shape) if isinstance(val, torch.Tensor) else None)
        for src in node.all_input_nodes:
            graph.add_edge(src.name, node.name)
    return TracedModel(fx_graph, graph, tensors, parameters, user_inputs, constants=constants, tracer=tracer)
