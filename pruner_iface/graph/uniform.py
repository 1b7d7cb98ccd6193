"""Uniform tensors: values that do not depend on the index along some dims.

A tensor made by `zeros`/`ones`/`full` (the zero position bias T5's cross-attention builds as
`zeros(1, self.n_heads, q, k)`), and elementwise results that only broadcast along those dims,
hold the same values whichever positions they lose there. So they need not pin the channels they
meet, provided their run-time size follows those channels (speed-up updates attributes such as
`n_heads`; a hard-coded size fails speed-up's output check loudly and is rolled back).

Each uniform dim carries a label vector, one label per index, joined with whatever channels meet
it position by position: every consumer of one uniform tensor then loses the same positions, so
their sizes still agree at run time. A consumer that is not elementwise, pointwise or attention
(see `AWARE`) pins those positions: a view written in place, a sum that counts them. (An in-place
elementwise update is a new node in the traced graph, and is uniform only where its operands are.)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import fx

from .attention import PRODUCTS, SDPA
from .rules import ELEMENTWISE, POINTWISE
from .trace import op_name

if TYPE_CHECKING:
    from .analysis import Propagation

FACTORIES = ("zeros", "ones", "full", "scalar_tensor", "new_zeros", "new_ones", "new_full")
ATTENTION = SDPA + PRODUCTS
AWARE = frozenset(ELEMENTWISE + POINTWISE + ATTENTION)  # ops that join (or pass on) uniform dims
Uniform = dict[int, torch.Tensor]  # dim -> one label per index along it


def uniform_dims(node: fx.Node, ctx: "Propagation") -> Uniform:
    """The uniform dims of `node`'s output and their label vectors (empty: none)."""
    name = op_name(node)
    if name in FACTORIES:
        return {d: ctx.state.uf.fresh(s) for d, s in enumerate(ctx.shape(node)) if s > 1}
    if name in POINTWISE and node.args and isinstance(node.args[0], fx.Node):
        return ctx.uniform.get(node.args[0].name, {})
    if name in ELEMENTWISE:
        return _broadcast_only(node, ctx)
    return {}


def _broadcast_only(node: fx.Node, ctx: "Propagation") -> Uniform:
    """Dims along which every operand is uniform or broadcast (size 1)."""
    shape = ctx.shape(node)
    operands = [a for a in node.args if isinstance(a, fx.Node)]
    out: Uniform = {}
    for d, size in enumerate(shape):
        if size <= 1:
            continue
        vectors = []
        for arg in operands:
            own = ctx.shape(arg)
            k = d - (len(shape) - len(own))
            if k < 0 or own[k] == 1:
                continue
            vector = ctx.uniform.get(arg.name, {}).get(k)
            if vector is None:
                break
            vectors.append(vector)
        else:
            for other in vectors[1:]:
                ctx.state.uf.union_tensors(vectors[0], other)
            if vectors:
                out[d] = vectors[0]
    return out


def meet_uniform(node: fx.Node, ctx: "Propagation", found: Uniform) -> None:
    """Join each uniform dim of `node`'s inputs with the output labels along it: the positions a
    channel (or head) takes there go with it. A dim that the output keeps uniform is passed on;
    one that meets fixed positions, or an op outside `AWARE`, pins the dim."""
    inputs = [arg for arg in node.all_input_nodes if ctx.uniform.get(arg.name)]
    if not inputs:
        return
    name = op_name(node)
    labels = ctx.values.get(node.name)
    labels = labels[0] if isinstance(labels, (list, tuple)) and labels else labels
    if name not in AWARE or not isinstance(labels, torch.Tensor):
        for arg in inputs:
            for vector in ctx.uniform[arg.name].values():
                ctx.state.block(vector)
        return
    rank = labels.dim()
    matched = rank - 2 if name in ATTENTION else rank  # attention meets positions only along its batch dims
    passed = {id(v) for v in found.values()}
    for arg in inputs:
        offset = rank - len(ctx.shape(arg))
        for dim, vector in ctx.uniform[arg.name].items():
            if id(vector) in passed:
                continue
            along = labels.movedim(dim + offset, -1) if 0 <= dim + offset < matched else None
            if along is None or along.shape[-1] == 1:
                ctx.state.block(vector)  # positions nothing tells apart: kept
            else:
                ctx.state.uf.union_tensors(along, vector)
