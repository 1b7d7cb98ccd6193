"""Coupling rule for two-operand einsum: the product it writes, as matmul sees it.

Letters in both operands and the output are batch dims, letters in both operands only are the
summed (inner) dim, and the rest are the left operand's rows and the right one's columns. The
operands' labels are rearranged to ``[batch..., rows, inner]`` and ``[batch..., inner, columns]``
and coupled by the product rules of graph/attention.py (heads, or channel pairs without heads);
the result is laid back out in the output's letter order.
"""
from __future__ import annotations

import string

import torch

from .attention import join_heads, single_product
from .labels import compress
from .rules import rule


def parse(equation: str, ranks: list[int]) -> tuple[list[str], str] | None:
    """Per operand its letters and the output's, with `...` spelled out as letters; None if the
    equation repeats a letter within an operand (a diagonal) or cannot be read."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ranks):
        return None
    spare = iter(c for c in string.ascii_letters if c not in equation)
    ellipsis = max((rank - len(t.replace("...", "")) for t, rank in zip(terms, ranks) if "..." in t), default=0)
    extra = "".join(next(spare) for _ in range(max(ellipsis, 0)))
    spelled = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            term = term.replace("...", extra[len(extra) - (rank - len(term.replace("...", ""))):])
        if len(term) != rank or len(set(term)) != len(term):
            return None
        spelled.append(term)
    if arrow:
        output = output.replace("...", extra)
    else:  # implicit output: the letters seen once, in alphabetical order, after the ellipsis
        seen = "".join(spelled)
        output = extra + "".join(sorted(c for c in set(seen) if seen.count(c) == 1 and c not in extra))
    if len(set(output)) != len(output) or any(c not in "".join(spelled) for c in output):
        return None
    return spelled, output


def _arranged(labels: torch.Tensor, letters: str, sizes: dict[str, int], lead: list[str], first: list[str],
              second: list[str]) -> torch.Tensor:
    """Labels of an operand with `letters`, as [lead..., prod(first), prod(second)]; a letter
    summed within this operand alone keeps its first position (its labels were checked)."""
    wanted = lead + first + second
    labels = labels[tuple(slice(None) if c in wanted else 0 for c in letters)]
    kept = [c for c in letters if c in wanted]
    labels = labels.permute([kept.index(c) for c in wanted])
    full = [labels.shape[i] if c in lead else sizes[c] for i, c in enumerate(wanted)]
    rows = int(torch.Size([sizes[c] for c in first]).numel())
    return compress(labels.expand(full).reshape(*full[:len(lead)], rows, -1))


@rule("einsum")
def einsum(node, ctx):
    equation, operands = node.args[0], list(node.args[1])
    what = f"einsum {equation!r} (module {ctx.module(node)!r})"
    parsed = parse(equation, [len(ctx.shape(op)) for op in operands]) if isinstance(equation, str) else None
    if parsed is None or len(operands) != 2:
        return ctx.unknown(node, f"{what} with {len(operands)} operand(s) is not understood")
    letters, out = parsed
    sizes: dict[str, int] = {}  # a letter of size 1 in one operand broadcasts against the other
    for term, op in zip(letters, operands):
        for c, n in zip(term, ctx.shape(op)):
            sizes[c] = max(sizes.get(c, 1), n)
    a, b = letters
    batch = [c for c in out if c in a and c in b]
    rows, columns = [c for c in out if c in a and c not in b], [c for c in out if c in b and c not in a]
    inner = [c for c in a if c in b and c not in out]
    labels = []
    for term, op in zip(letters, operands):
        x = ctx.labels(op)
        if any(x.shape[d] > 1 for d, c in enumerate(term) if c not in out and c not in inner):
            ctx.state.block(x, f"{what} sums channels within one operand; they are not pruned")
        labels.append(x)
    left = _arranged(labels[0], a, sizes, batch, rows, inner)
    right = _arranged(labels[1], b, sizes, batch, inner, columns)
    rank = len(batch) + 2
    product = single_product(node, ctx, left, right, rank)
    if product is None:  # heads along the batch letters
        spans = [any(ctx.extent(op)[term.index(c)] > 1 for c in batch) if batch else True
                 for term, op in zip(letters, operands)]
        product = join_heads(ctx, node, [left, right], rank, spans)
    product = product.reshape((1,) * (rank - product.dim()) + tuple(product.shape))
    shape = list(product.shape[:len(batch)])
    shape += [sizes[c] for c in rows] if product.shape[-2] > 1 else [1] * len(rows)
    shape += [sizes[c] for c in columns] if product.shape[-1] > 1 else [1] * len(columns)
    laid = product.reshape(shape).permute([(batch + rows + columns).index(c) for c in out])
    return compress(laid.contiguous(), ctx.state.uf)
