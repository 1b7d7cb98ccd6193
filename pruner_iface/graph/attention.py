"""Coupling rules for attention: products of two activations and scaled_dot_product_attention.

Each position of the batch dims of such a product (one head of one attention) reads every
channel its operands hold at that position, and scaled_dot_product_attention scales by the head
width: so all of a head's query, key and value channels join one class, and the output carries
it. A key/value head that several query heads share (grouped-query attention, repeated by
`repeat_kv` or `enable_gqa`) joins their classes: the unit is the key/value head with its query
heads. Every joined label is marked as an attention label, which the `head` target selects.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import fx

from .labels import free, labelled
from .rules import linear_like, out_rank, rule, transposed_parameter
from .trace import module_path


def _batch_rows(labels: torch.Tensor, batch: tuple[int, ...]) -> torch.Tensor:
    """Labels as [positions of the batch dims, everything else]."""
    rank = len(batch) + 2
    labels = labels.reshape((1,) * (rank - labels.dim()) + tuple(labels.shape))
    lead = labels.shape[:-2]
    labels = labels.expand(*[b if s == 1 else s for s, b in zip(lead, batch)], *labels.shape[-2:])
    return labels.reshape(int(torch.Size(batch).numel()), -1)


def join_heads(ctx, node: fx.Node, operands: list, rank: int, spans: list[bool]) -> torch.Tensor:
    """One class per position of the leading `rank - 2` dims over all operands; returns the
    output labels ([batch label shape..., 1, 1]). `spans[i]`: operand i has real extent along the
    labelled batch dims, so a position it holds without labels cannot be removed.

    Labels found at several positions belong to a key/value head shared by several query heads:
    with `ctx.gqa == "kv"` they join those heads into one unit; with "query" they are kept out
    (the key/value head stays) and each query head is its own unit."""
    labels = [ctx.labels(op) if isinstance(op, fx.Node) else op for op in operands]
    labels = [x.reshape((1,) * (rank - x.dim()) + tuple(x.shape)) for x in labels]
    batch = tuple(max(x.shape[d] for x in labels) for d in range(rank - 2))
    rows = [_batch_rows(x, batch).numpy() for x in labels]
    # positions holding the same labels are one head (batch x heads folded)
    heads, first, inverse = _distinct_sets(np.concatenate(rows, 1))
    values, counts = np.unique(heads[heads >= 0], return_counts=True)
    state = ctx.state
    if counts.size and counts.max() > 1:
        found, groups = _shared_heads(ctx, heads, set(values[counts > 1].tolist()))
    else:  # no key/value head serves several query heads: each head is one class
        found, groups = heads, list(range(len(heads)))
    state.uf.union_each(torch.from_numpy(found))
    held = (found >= 0).any(1)  # heads with labels of their own
    state.attention.update(found[found >= 0].tolist())
    bare = np.zeros(len(heads), dtype=bool)  # heads an operand spans without labels at their first position
    for r, s in zip(rows, spans):
        if s:
            bare |= (r[first] < 0).any(1)
    if (bare & held).any():
        state.block(torch.from_numpy(found[bare & held]), f"{node.target} in module {ctx.module(node)!r} reads "
                    f"a head without prunable channels beside prunable ones; that head is not pruned")
    labels_of_head = torch.from_numpy(np.where(held, np.where(found >= 0, found, found.max()).min(1), -1))
    joined = labels_of_head[torch.from_numpy(inverse)]
    if len(heads) > 1:  # remember the heads of this attention
        state.heads.setdefault(module_path(node), []).append((labels_of_head, groups))  # "": the model itself
    return state.uf.canonical(joined).reshape(*batch, 1, 1)


def _distinct_sets(table: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct label sets of the rows of `table` in order of first appearance, each sorted
    and padded in front with -1 ([sets, width]); the first row holding each; each row's set."""
    table = np.sort(table, axis=1)
    table[:, 1:][table[:, 1:] == table[:, :-1]] = -1  # a label held twice at one position counts once
    table.sort(axis=1)
    seen: dict[bytes, int] = {}
    inverse = np.fromiter((seen.setdefault(row.tobytes(), len(seen)) for row in table), dtype=np.int64,
                          count=len(table))
    first = np.unique(inverse, return_index=True)[1]  # sets are numbered in order of first appearance
    return table[first], first, inverse


def _shared_heads(ctx, heads: np.ndarray, shared: set[int]) -> tuple[np.ndarray, list[int]]:
    """Grouped-query attention: per head, the labels that join its class ([heads, width], -1
    padded) and the key/value head it reads. A shared key/value head joins its query heads
    (gqa "kv"), or becomes one blocked class of its own (gqa "query")."""
    found = np.full_like(heads, -1)
    kv_group: dict[frozenset, int] = {}  # shared labels (or the head itself, unshared) -> key/value head
    groups = []
    for h, row in enumerate(heads.tolist()):
        key = [v for v in row if v >= 0]
        own = frozenset(v for v in key if v in shared)
        groups.append(kv_group.setdefault(own if own else frozenset([("head", h)]), len(kv_group)))
        if ctx.gqa == "query" and own:  # a shared key/value head is kept, as one class: a view that
            kv = torch.tensor(sorted(own))  # holds it beside query heads (fused qkv) then stays split by head
            ctx.state.uf.union_tensors(kv[:1].expand(len(kv)), kv)
            ctx.state.block(kv)
            key = [v for v in key if v not in own]
        found[h, found.shape[1] - len(key):] = key
    return found, groups


def _spans(ctx, arg, batch_rank: int) -> bool:
    shape = ctx.extent(arg) if isinstance(arg, fx.Node) else ()
    return any(s > 1 for s in shape[:len(shape) - 2][-batch_rank:]) if batch_rank else True


SDPA = ("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention")
PRODUCTS = ("matmul", "bmm", "mm", "baddbmm")  # products of activations (see join_heads)


@rule(*SDPA)
def scaled_dot_product_attention(node, ctx):
    query, key, value = node.args[:3]
    mask = node.args[3] if len(node.args) > 3 else node.kwargs.get("attn_mask")
    rank = out_rank(node) if isinstance(node.meta.get("val"), torch.Tensor) else len(ctx.shape(query))
    operands = [query, key, value] + ([mask] if isinstance(mask, fx.Node) else [])
    labels = [ctx.labels(op) for op in operands]
    q_heads = ctx.shape(query)[-3] if rank >= 3 else 1
    for i in (1, 2):  # grouped-query attention inside the op: key/value head g serves q_heads / kv_heads heads
        kv_heads = ctx.shape(operands[i])[-3] if rank >= 3 else 1
        if kv_heads != q_heads and labels[i].dim() >= 3 and labels[i].shape[-3] > 1:
            labels[i] = labels[i].repeat_interleave(q_heads // kv_heads, dim=-3)
    spans = [_spans(ctx, op, rank - 2) for op in operands]
    if len(spans) == 4:  # a mask broadcast over heads is not sliced; one with a head dim is
        spans[3] = len(ctx.extent(mask)) >= 3 and ctx.extent(mask)[-3] > 1
    out = join_heads(ctx, node, labels, rank, spans)
    val = node.meta.get("val")
    if isinstance(val, (list, tuple)):  # fused kernels also return statistics
        return [out] + [free(v.dim()) if isinstance(v, torch.Tensor) else free(0) for v in val[1:]]
    return out


@rule(*PRODUCTS[:3])
def matmul(node, ctx):
    """A product of two activations is attention-like (scores, or scores times values); a product
    with a parameter matrix is a linear layer (see rules.linear_like)."""
    a, b = node.args[:2]
    if ctx.tensor_name(b) is not None and len(ctx.shape(b)) == 2 and ctx.tensor_name(a) is None:
        return linear_like(node, ctx, a, b, None, transposed=True)
    weight = transposed_parameter(b, ctx)
    if weight is not None and ctx.tensor_name(a) is None:  # x @ W.T, nn.Linear written out
        return linear_like(node, ctx, a, weight, None)
    rank = out_rank(node)
    if rank < 2 or len(ctx.shape(a)) < 2 or len(ctx.shape(b)) < 2:
        return _opaque(node, ctx)
    single = single_product(node, ctx, ctx.labels(a), ctx.labels(b), rank)
    if single is not None:
        return single
    return join_heads(ctx, node, [a, b], rank, [_spans(ctx, a, rank - 2), _spans(ctx, b, rank - 2)])


def _matrix_labels(labels: torch.Tensor) -> tuple[int | None, torch.Tensor | None] | None:
    """(-2 or -1, labels) for an operand whose labels vary along one of its two matrix dims only,
    (None, None) for one without labels, None for anything else (labels along batch dims or both)."""
    if not labelled(labels):
        return None, None
    varying = [d for d in range(labels.dim()) if labels.shape[d] > 1]
    if len(varying) != 1 or varying[0] < labels.dim() - 2:
        return None
    dim = varying[0] - labels.dim()
    return dim, labels.reshape(-1)


def single_product(node, ctx, a: torch.Tensor, b: torch.Tensor, rank: int) -> torch.Tensor | None:
    """A @ B without heads (a non-local block's scores and values, a 2-D product): channel k of
    A's last dim meets row k of B, so the two join index by index, and the product keeps A's row
    labels and B's column labels. Exact for any such product; a scale computed from the width at
    run time (q.shape[-1] ** -0.5) is caught by speed_up's output check. None where the labels
    do not have this form (heads along batch dims, both matrix dims labelled): see join_heads."""
    found = [_matrix_labels(a), _matrix_labels(b)]
    if None in found:
        return None
    (a_dim, a_labels), (b_dim, b_labels) = found
    if a_dim == -2 and b_dim == -1:
        return None  # every element would carry a row and a column channel
    state, what = ctx.state, f"{node.target} in module {ctx.module(node)!r}"
    inner = ([a_labels] if a_dim == -1 else []) + ([b_labels] if b_dim == -2 else [])  # along the summed dim
    if len(inner) == 2:
        state.uf.union_tensors(inner[0], inner[1])
        mixed = (inner[0] >= 0) != (inner[1] >= 0)
        if bool(mixed.any()):
            state.block(torch.cat([inner[0][mixed], inner[1][mixed]]), f"{what} multiplies channels with "
                        f"positions that have no prunable channels; those channels are not pruned")
    elif inner:  # the other operand cannot lose the matching rows or columns
        state.block(inner[0], f"{what} multiplies channels with a tensor without prunable channels; "
                              f"those channels are not pruned")
    out = free(rank)
    if a_dim == -2:
        out = a_labels.reshape((1,) * (rank - 2) + (-1, 1))
    elif b_dim == -1:
        out = b_labels.reshape((1,) * (rank - 1) + (-1,))
    return out


def _opaque(node, ctx):
    return ctx.unknown(node, f"{node.target} on vectors (module {ctx.module(node)!r}) is not understood")


@rule("baddbmm")
def baddbmm(node, ctx):
    """input + batch1 @ batch2 (scores plus a mask, as nn.MultiheadAttention computes them when it
    returns its weights): the product's heads, with the added tensor read at the same positions."""
    added, a, b = node.args[:3]
    rank = out_rank(node)
    operands = [a, b] + ([added] if isinstance(added, fx.Node) else [])
    return join_heads(ctx, node, operands, rank, [_spans(ctx, op, rank - 2) for op in operands])
