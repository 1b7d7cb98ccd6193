"""Trace a model once into an operator graph with torch.export (ATen ops, module paths, shapes).

torch.export is the tracer: it handles Python control flow at trace time and Hugging Face
models, names every parameter and buffer, and records the module path of each op. Models it
cannot export raise a TraceError naming the failure (see docs/design/graph.md).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch
from torch import fx, nn

from ..errors import InputError
from ..inputs import describe_inputs, eval_mode, normalize_inputs


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


def op_name(node: fx.Node) -> str:
    target = node.target
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        return packet.__name__
    return getattr(target, "__name__", str(target))


def module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def trace(model: nn.Module, example_inputs: Any) -> TracedModel:
    """Export `model` on `example_inputs` (eval mode; every submodule's mode restored)."""
    args, kwargs = normalize_inputs(example_inputs)
    try:
        with eval_mode(model), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exported = torch.export.export(model, args, kwargs, strict=False)
    except Exception as exc:
        raise TraceError(
            f"torch.export could not trace {type(model).__name__} on {describe_inputs(args, kwargs)}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    sig = exported.graph_signature
    tensors = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
    constants = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}) or {})
    tensors.update(constants)
    graph = nx.DiGraph()
    fx_graph = exported.graph
    for node in fx_graph.nodes:
        val = node.meta.get("val")
        graph.add_node(node.name, op=op_name(node) if node.op == "call_function" else node.op,
                       module=module_path(node), shape=tuple(val.shape) if isinstance(val, torch.Tensor) else None)
        for src in node.all_input_nodes:
            graph.add_edge(src.name, node.name)
    return TracedModel(fx_graph, graph, tensors, set(sig.inputs_to_parameters.values()), list(sig.user_inputs),
                       constants=set(constants.values()))
