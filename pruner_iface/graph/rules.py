"""Coupling rules: how each ATen op maps its inputs' channel labels to its output's.

A rule takes the fx node and the propagation context and returns the output labels (a tensor,
or a list for ops returning several tensors). Add a rule for a new op with ``@rule("op_name")``;
ops without a rule block the channels that reach them and warn (see docs/design/graph.md).
"""
from __future__ import annotations

import operator
from typing import Callable

import torch
from torch import fx
from torch.utils import _pytree as pytree

from .labels import NO_LABEL, Slice, compress, free, labelled

RULES: dict[str, Callable] = {}


def rule(*names: str):
    def register(fn):
        for name in names:
            RULES[name] = fn
        return fn

    return register


def out_rank(node: fx.Node) -> int:
    val = node.meta.get("val")
    return val.dim() if isinstance(val, torch.Tensor) else 0


def with_channels(rank: int, dim: int, labels: torch.Tensor) -> torch.Tensor:
    shape = [1] * rank
    shape[dim] = labels.numel()
    return labels.reshape(shape)


# ----------------------------------------------------------------------------- pointwise
POINTWISE = (
    "relu", "relu_", "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish",
    "hardswish_", "hardsigmoid", "hardsigmoid_", "hardtanh", "hardtanh_", "relu6", "leaky_relu", "leaky_relu_",
    "elu", "elu_", "selu", "celu", "softplus", "mish", "mish_", "dropout", "dropout_", "feature_dropout",
    "alpha_dropout", "clone", "contiguous", "alias", "detach", "lift_fresh", "lift_fresh_copy", "to", "_to_copy", "type_as",
    "abs", "neg", "exp", "log", "sqrt", "rsqrt", "reciprocal", "pow", "clamp", "clamp_min", "clamp_max", "erf",
    "sin", "cos", "square", "logsigmoid", "detach_",
)


@rule(*POINTWISE)
def pointwise(node, ctx):
    return ctx.labels(node.args[0])


@rule("zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like")
def like(node, ctx):
    """A tensor shaped like its input: its size follows the input's channels, as x * 0 would."""
    return ctx.labels(node.args[0])


@rule("zeros", "ones", "full", "empty", "scalar_tensor", "arange", "new_zeros", "new_ones", "new_full", "new_empty")
def created(node, ctx):
    """A tensor made from sizes and a fill value: it reads no channels (`new_*` only takes its
    source's dtype and device). Where its values are uniform, see graph/uniform.py."""
    return free(out_rank(node))


# ----------------------------------------------------------------------------- elementwise with coupling
ELEMENTWISE = ("add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "maximum", "minimum", "rsub", "where",
               "addcmul", "lerp", "masked_fill", "masked_fill_")


@rule(*ELEMENTWISE)
def elementwise(node, ctx):
    """Operands meet channel by channel: their labels join."""
    what = f"{node.target} in module {ctx.module(node)!r}"
    return compress(join_positionally(ctx, node.args, out_rank(node), what), ctx.state.uf)


# ----------------------------------------------------------------------------- data movement: run the op on labels
MOVEMENT = (
    "view", "reshape", "_unsafe_view", "flatten", "unflatten", "permute", "transpose", "t", "squeeze",
    "unsqueeze", "expand", "cat", "concat", "stack", "split", "split_with_sizes", "chunk", "unbind", "slice",
    "select", "narrow", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "repeat", "flip", "roll",
    "movedim", "swapaxes", "index_select", "tensor_split", "expand_as", "view_as", "reshape_as",
    "native_channel_shuffle", "numpy_T",
)


SPLITS = ("split", "split_with_sizes", "chunk", "unbind", "tensor_split")
EQUAL_SPLITS = ("chunk", "unbind")  # piece sizes recomputed from the new width after pruning
SLICES = ("slice", "select", "narrow", "index_select")


# act on compressed labels as they are
DIMWISE = ("transpose", "t", "numpy_T", "permute", "movedim", "swapaxes", "unsqueeze")


@rule(*MOVEMENT)
def movement(node, ctx):
    name = ctx.op(node)
    source = node.args[0]
    if transposed_parameter(node, ctx) is not None and all(
            ctx.op(user) in ("matmul", "mm") and user.args[1] is node and ctx.tensor_name(user.args[0]) is None
            for user in node.users):
        return free(out_rank(node))  # x @ W.T: the product is a linear layer over W (see linear_like)
    if not _carries_labels(node, ctx):  # nothing to move or couple
        val = node.meta.get("val")
        return [free(v.dim()) for v in val] if isinstance(val, (list, tuple)) else free(out_rank(node))
    if name in DIMWISE and isinstance(source, fx.Node):
        return compress(node.target(ctx.labels(source), *node.args[1:], **node.kwargs), ctx.state.uf)
    if name in SPLITS or name in SLICES:
        _couple_pieces(node, ctx, name)
    elif name in ("cat", "concat", "stack"):
        _couple_joined(node, ctx, name)
    elif name in ("channel_shuffle", "native_channel_shuffle"):
        labels = ctx.labels(source)
        if labels.dim() > 1 and labels.shape[1] > 1:
            rows = labels.expand(ctx.shape(source)).movedim(1, 0).reshape(node.args[1], -1)
            ctx.state.uf.union_tensors(rows[0], rows[1:])
    elif name == "roll":
        labels = ctx.labels(source)
        dims = node.args[2] if len(node.args) > 2 else None
        dims = [dims] if isinstance(dims, int) else (dims or list(range(labels.dim())))
        if any(labels.shape[d % labels.dim()] > 1 for d in dims):
            ctx.state.block(labels, f"roll along channels (module {ctx.module(node)!r}) would move channels "
                                    f"differently once some are removed; they are not pruned")

    lean = _lean_movement(node, ctx, name)
    if lean is not None:
        return lean

    def materialize(arg):
        if isinstance(arg, fx.Node):
            return ctx.labels(arg).expand(ctx.shape(arg)).contiguous()
        if isinstance(arg, (list, tuple)):
            return type(arg)(materialize(a) for a in arg)
        return arg

    args = [materialize(a) for a in node.args]
    if name == "index_select":  # the positions it takes, not the labels of the index tensor
        args[2] = _index_value(ctx, node.args[2])
    kwargs = {k: materialize(v) for k, v in node.kwargs.items()}
    out = node.target(*args, **kwargs)
    outs = [out] if isinstance(out, torch.Tensor) else list(out)
    outs = [compress(o, ctx.state.uf) for o in outs]
    if name in ("view", "reshape", "_unsafe_view", "unflatten") and isinstance(source, fx.Node):
        _couple_split_dims(ctx, ctx.labels(source), outs[0])
    return outs[0] if isinstance(out, torch.Tensor) else outs


VIEWS = ("view", "reshape", "_unsafe_view", "flatten", "unflatten")


def _lean_movement(node, ctx, name) -> torch.Tensor | None:
    """Views and slices computed on the labels without materialising the dims they do not touch
    (a token dim of 197 along which the labels are constant, say); None where the general path
    must run the op on full labels."""
    source = node.args[0]
    if not isinstance(source, fx.Node):
        return None
    labels, before = ctx.labels(source), ctx.shape(source)
    if name in VIEWS:
        out = _view_labels(labels, before, ctx.shape(node))
        if out is None:
            return None
        out = compress(out, ctx.state.uf)
        _couple_split_dims(ctx, labels, out)
        return out
    if name == "squeeze":  # drops dims of size 1, whose labels have size 1 too
        dims = node.args[1] if len(node.args) > 1 else range(len(before))
        dims = {d % len(before) for d in ([dims] if isinstance(dims, int) else dims)} if before else set()
        return labels.reshape([n for d, n in enumerate(labels.shape) if not (d in dims and before[d] == 1)])
    if name == "expand":  # new leading dims and size-1 dims broadcast: the labels do not change
        return labels.reshape((1,) * (len(ctx.shape(node)) - labels.dim()) + tuple(labels.shape))
    if name in SLICES and labels.dim():
        dim = (node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)) % labels.dim()
        shape = list(labels.shape)
        shape[dim] = before[dim]
        args = list(node.args)
        args[0] = labels.expand(shape)
        if name == "index_select":  # the positions it takes, not the labels of the index tensor
            args[2] = _index_value(ctx, node.args[2])
        return compress(node.target(*args, **node.kwargs).contiguous(), ctx.state.uf)
    return None


def _view_labels(labels: torch.Tensor, before: tuple, after: tuple) -> torch.Tensor | None:
    """A view's output labels, from a view of labels materialised only within the groups of dims
    the view merges or splits (matched by products of sizes) that carry labels."""
    if 0 in before or labels.dim() != len(before):
        return None
    a = [d for d, n in enumerate(before) if n > 1]
    b = [d for d, n in enumerate(after) if n > 1]
    lean_in, lean_out = [1] * len(before), [1] * len(after)
    i = j = 0
    while i < len(a):
        group_in, group_out = [a[i]], [b[j]]
        size_in, size_out = before[a[i]], after[b[j]]
        i, j = i + 1, j + 1
        while size_in != size_out:
            if size_in < size_out:
                group_in.append(a[i])
                size_in *= before[a[i]]
                i += 1
            else:
                group_out.append(b[j])
                size_out *= after[b[j]]
                j += 1
        if any(labels.shape[d] > 1 for d in group_in):
            for d in group_in:
                lean_in[d] = before[d]
            for d in group_out:
                lean_out[d] = after[d]
    return labels.expand(lean_in).reshape(lean_out)


def transposed_parameter(node, ctx) -> fx.Node | None:
    """The 2-D parameter W when `node` is W.T (t, .T, transpose or permute of its two dims)."""
    if not isinstance(node, fx.Node) or node.op != "call_function" or not node.args:
        return None
    weight = node.args[0]
    if ctx.tensor_name(weight) is None or len(ctx.shape(weight)) != 2:
        return None
    name = ctx.op(node)
    if name in ("t", "numpy_T") or (name == "transpose" and {d % 2 for d in node.args[1:3]} == {0, 1}) or \
            (name == "permute" and [d % 2 for d in node.args[1]] == [1, 0]):
        return weight
    return None


def _carries_labels(node, ctx) -> bool:
    return any(labelled(labels) for a in node.all_input_nodes
               for labels in pytree.tree_leaves(ctx.labels(a)) if isinstance(labels, torch.Tensor))


def _labelled_dims(labels: torch.Tensor) -> list[int]:
    return [d for d in range(labels.dim()) if labels.shape[d] > 1] if labelled(labels) else []


def _couple_split_dims(ctx, before: torch.Tensor, after: torch.Tensor) -> None:
    """A view that splits one channel dim into several (channel shuffle, heads x head_dim) stays
    rectangular after pruning only if whole rows go (a head) or the same inner index goes from
    every row; decided once every join is known (LabelState.settle)."""
    dims = _labelled_dims(after)
    if len(dims) <= len(_labelled_dims(before)) or len(dims) < 2:
        return
    grid = after.movedim(dims[-1], -1)
    ctx.state.grids.append(grid.reshape(-1, grid.shape[-1]))


def join_positionally(ctx, args, rank: int, what: str, skip_dim: int | None = None) -> torch.Tensor:
    """Tensors combined position by position keep matching positions: their labels join; one that
    spans a channel dim without labels pins the channels it meets."""
    tensors = [a for a in args if isinstance(a, fx.Node)]
    labels = [ctx.labels(a) for a in tensors]
    labels = [x.reshape((1,) * (rank - x.dim()) + tuple(x.shape)) for x in labels]
    if skip_dim is not None:  # positions along the joined dim do not meet
        labels = [x.narrow(skip_dim, 0, 1) if x.shape[skip_dim] > 1 else x for x in labels]
    shape = [max(x.shape[d] for x in labels) for d in range(rank)]
    if skip_dim is not None:
        shape[skip_dim] = 1
    shared = _shared_operands(labels)
    labels = [x.expand(shape) for x in labels]
    meeting = [x for i, x in enumerate(labels) if i not in shared]
    joined = meeting[0].clone()
    for other in meeting[1:]:
        ctx.state.uf.union_tensors(joined, other)
        joined = torch.where(joined >= 0, joined, other)
    for i, rows_dims in shared.items():
        order = rows_dims + [d for d in range(rank) if d not in rows_dims]
        rows = joined.permute(order).reshape(int(torch.Size([shape[d] for d in rows_dims]).numel()), -1)
        ctx.state.share(rows, labels[i].permute(order).reshape(rows.shape)[0])
        joined = torch.where(joined >= 0, joined, labels[i])
    for arg, x in zip(tensors, labels):
        real = (1,) * (rank - len(ctx.shape(arg))) + ctx.extent(arg)
        if bool(((x < 0) & (joined >= 0)).any()):  # it cannot lose positions along the dims it spans
            ctx.state.require_whole(joined, [d for d in range(rank) if real[d] > 1 and d != skip_dim],
                                    f"{what} meets a tensor without prunable channels (e.g. the model input) "
                                    f"position by position; those channels are not pruned")
    return joined


def _shared_operands(labels: list[torch.Tensor]) -> dict[int, list[int]]:
    """Operands with labels that broadcast along dims where another operand's labels vary: a
    norm weight over head_dim times [heads, head_dim], a learned scalar times every channel. Each
    of their labels is shared by all rows along those dims (see LabelState.share) rather than
    joined with every row, which would merge the rows (the heads, the channels) into one unit.
    Returns operand index -> the dims it is broadcast along; none if no operand is left to meet."""
    varying = [{d for d in range(x.dim()) if x.shape[d] > 1} if labelled(x) else set() for x in labels]
    shared = {}
    for i, x in enumerate(labels):
        others = set().union(*(v for j, v in enumerate(varying) if j != i))
        across = sorted(d for d in others if x.shape[d] == 1)
        if across and labelled(x):
            shared[i] = across
    return shared if len(shared) < len(labels) else {}


def _couple_joined(node, ctx, name) -> None:
    """cat along a non-channel dim, and stack, keep the other positions aligned."""
    tensors = node.args[0]
    rank = out_rank(node)
    what = f"{node.target} in module {ctx.module(node)!r}"
    if name == "stack":
        join_positionally(ctx, tensors, rank - 1, what)
        return
    dim = (node.args[1] if len(node.args) > 1 else 0) % rank
    labels = [ctx.labels(t) for t in tensors if isinstance(t, fx.Node)]
    if any(x.dim() == rank and x.shape[dim] > 1 for x in labels):
        return  # concatenating channels: pieces keep their own channels
    join_positionally(ctx, tensors, rank, what, skip_dim=dim)


def _couple_pieces(node, ctx, name) -> None:
    """Pieces of a split along channels: equal pieces (chunk, unbind) stay equal after pruning only
    if they lose the same positions; fixed sizes would be wrong after pruning, so their channels
    are blocked. A slice, selection or constant index keeps finding the same channels only where
    removals leave its anchors in place (see `_slice_regions`)."""
    x = node.args[0]
    labels = ctx.labels(x)
    rank = labels.dim()
    dim_arg = {"split": 2, "split_with_sizes": 2, "chunk": 2, "unbind": 1, "tensor_split": 2,
               "slice": 1, "select": 1, "narrow": 1, "index_select": 1}[name]
    dim = node.args[dim_arg] if len(node.args) > dim_arg else node.kwargs.get("dim", 0)
    dim = dim % rank if rank else 0
    if rank == 0 or labels.shape[dim] <= 1 or not labelled(labels):
        return
    size = ctx.shape(x)[dim]
    if name in SLICES:
        free = _slice_regions(node, ctx, name, size)
        if free is not None and bool(free.all()):
            return
        ctx.state.require_whole(labels, [dim], f"{node.target} takes a fixed part of the channels of its input "
                                               f"(module {ctx.module(node)!r}); they are not pruned", free)
        return
    val = node.meta.get("val")
    sizes = [v.shape[dim] for v in val] if isinstance(val, (list, tuple)) else [size]
    equal = name in EQUAL_SPLITS or (name in ("split", "split_with_sizes") and len(set(sizes)) == 1
                                     and sum(sizes) == size)
    if not equal:  # fine only where no unit cuts the dim (all of it is one attention head)
        ctx.state.require_whole(labels, [dim], f"{node.target} splits the channels of its input into fixed sizes "
                                               f"(module {ctx.module(node)!r}); they are not pruned")
        return
    full = labels.expand(ctx.shape(x)).movedim(dim, 0)
    if len(set(sizes)) != 1:
        ctx.state.block(full, f"{node.target} splits channels into unequal pieces {sizes} "
                              f"(module {ctx.module(node)!r}); they are not pruned")
        return
    pieces = full.reshape(len(sizes), sizes[0], -1)
    ctx.state.uf.union_tensors(pieces[0], pieces[1:])


def _slice_regions(node, ctx, name, size: int) -> torch.Tensor | None:
    """Which positions of the sliced dim removals may take (True) so that the same code on the
    smaller tensor still picks the kept part of what it picked: the pruned model runs the slice
    with the same numbers, and a bound counted from the front (start 2) needs every position before
    it, one counted from the back (-2) every position after it. So `x[:, 3:]` may lose what it
    takes, `x[:, -2:]` and `x[:, [-1]]` what lies before, `x[:, :4]` what lies after.
    None: nothing may go."""
    free = torch.zeros(size, dtype=torch.bool)
    if name == "index_select":
        index = ctx.constant(node.args[2])
        return None if index is None else _index_regions(index, size)
    if name == "select":
        return _index_regions(torch.tensor([node.args[2]]), size)
    if name == "narrow":
        start, length = node.args[2], node.args[3]
        start_from_back = isinstance(start, int) and start < 0
        start = start + size if start_from_back else start
        if start_from_back:
            free[:start] = True
        else:
            free[start + length:] = True
        return free
    start = node.args[2] if len(node.args) > 2 else None
    end = node.args[3] if len(node.args) > 3 else None
    step = node.args[4] if len(node.args) > 4 else 1
    if not all(v is None or isinstance(v, int) for v in (start, end, step)):
        return None  # bounds computed from sizes at run time
    start_from_back, to_end, end_from_back = start is not None and -size < start < 0, end is None or end >= size, \
        end is not None and end < 0
    start = 0 if start is not None and start <= -size else start  # clamped to the front, before and after
    s = 0 if start is None else max(start + size, 0) if start_from_back else min(start, size)
    e = size if to_end else max(end + size, 0) if end_from_back else end
    if step != 1:
        return free
    if start_from_back and (to_end or end_from_back):
        free[:s] = True  # the slice and what follows it are counted from the back
    elif not start_from_back and (to_end or end_from_back):
        free[s:e] = True  # anchored at both ends: its own positions may go
    elif not start_from_back:
        free[e:] = True  # a fixed count from the front: what follows may go
    return free


def _index_regions(index: torch.Tensor, size: int) -> torch.Tensor | None:
    """Free positions for a constant index along a dim: an index counted from the front needs every
    position up to it, one counted from the back every position from it on; what lies between
    may go."""
    if index.dtype == torch.bool or index.numel() == 0 or index.is_floating_point():
        return None
    values = index.flatten().tolist()
    front = max((v for v in values if v >= 0), default=-1)
    back = min((v + size for v in values if v < 0), default=size)
    free = torch.zeros(size, dtype=torch.bool)
    free[front + 1:max(back, front + 1)] = True
    return free


@rule("getitem")
def getitem(node, ctx):
    return ctx.labels(node.args[0])[node.args[1]]


def _index_value(ctx, arg) -> torch.Tensor:
    """A constant index's value; for one known only at run time, zeros of its shape (where it
    reads channels, `index` and `_couple_pieces` keep them whole, so any position gives their labels)."""
    value = ctx.constant(arg)
    if value is not None:
        return value
    return torch.zeros(ctx.shape(arg), dtype=torch.long)


@rule("index")
def index(node, ctx):
    """x[idx0, idx1, ...] with index tensors (advanced indexing). Along dims without channel labels
    any index gives the same labels (a pooled token picked per sample, a mask over positions);
    along channels, a constant index keeps its channels where `_slice_regions` allows, and an
    index known only at run time keeps them all."""
    source, indices = node.args[0], node.args[1]
    labels = ctx.labels(source)
    sizes = list(ctx.shape(source))
    where = f"{node.target} (module {ctx.module(node)!r})"
    picks, d = [], 0
    for idx in indices:
        if idx is None:
            picks.append(None)
            d += 1
            continue
        val = idx.meta.get("val")
        if val.dtype == torch.bool:  # a mask over val.dim() dims: one dim of the selected positions
            span = list(range(d, d + val.dim()))
            if any(labels.shape[k] > 1 for k in span):
                ctx.state.require_whole(labels, span, f"{where} masks positions along channels; they are not pruned")
            for k in span:
                labels = labels.narrow(k, 0, 1)
            labels = labels.flatten(span[0], span[-1]) if len(span) > 1 else labels
            sizes[d:d + len(span)] = [1]
            picks.append(torch.zeros(1, dtype=torch.long))
        elif labels.shape[d] > 1:  # along channels
            value = ctx.constant(idx)
            free = None if value is None else _index_regions(value, sizes[d])
            reason = (f"{where} picks channels at positions known only at run time; they are not pruned"
                      if value is None else f"{where} picks a fixed part of the channels of its input; they are "
                                            f"not pruned")
            ctx.state.require_whole(labels, [d], reason, free)
            picks.append(_index_value(ctx, idx))
        else:
            picks.append(torch.zeros((1,) * val.dim(), dtype=torch.long))
        d += 1
    return compress(labels[tuple(slice(None) if p is None else p for p in picks)], ctx.state.uf)


# ----------------------------------------------------------------------------- spatial ops keep channels
SPATIAL = (
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_bilinear2d", "upsample_bicubic2d",
    "upsample_linear1d", "upsample_trilinear3d", "_upsample_nearest_exact2d",
)
PADS = ("constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
        "replication_pad2d", "replication_pad3d", "circular_pad1d", "circular_pad2d", "circular_pad3d")


@rule(*SPATIAL)
def spatial(node, ctx):
    labels = ctx.labels(node.args[0])
    val = node.meta.get("val")
    out_shape = tuple((val[0] if isinstance(val, (list, tuple)) else val).shape)
    in_shape = ctx.shape(node.args[0])
    resized = [d for d in range(min(len(in_shape), len(out_shape), labels.dim()))
               if labels.shape[d] > 1 and in_shape[d] != out_shape[d]]
    if resized or (labels.dim() > 2 and any(s > 1 for s in labels.shape[2:])):
        ctx.state.block(labels, f"{node.target} over dims that carry channels (module {ctx.module(node)!r})")
        labels = free(out_rank(node))
    val = node.meta.get("val")
    return [labels, labels] if isinstance(val, (list, tuple)) else labels


@rule(*PADS)
def pad(node, ctx):
    """Padding adds fixed counts of positions at both ends of the last dims. With a constant it
    adds positions without channels, which the smaller tensor gets at the same ends, so channels
    along any dim (channels-last layouts) keep their places; reflected, replicated or circular
    padding copies channels, and cropping (negative pads) fixes a part, so those are kept."""
    labels = ctx.labels(node.args[0])
    widths = list(node.args[1])
    name = ctx.op(node)
    mode = (node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")) if name == "pad" else \
        "constant" if name == "constant_pad_nd" else name
    rank = labels.dim()
    for i in range(len(widths) // 2):
        dim, (left, right) = rank - 1 - i, widths[2 * i:2 * i + 2]
        if labels.shape[dim] <= 1 or not labelled(labels) or (left == 0 and right == 0):
            continue
        if mode != "constant" or left < 0 or right < 0:
            ctx.state.block(labels, f"{node.target} ({mode}, {widths}) over dims that carry channels "
                                    f"(module {ctx.module(node)!r}); they are not pruned")
            return free(out_rank(node))
        shape = list(labels.shape)
        shape[dim] = left
        before = torch.full(shape, NO_LABEL, dtype=labels.dtype)
        shape[dim] = right
        labels = torch.cat([before, labels, torch.full(shape, NO_LABEL, dtype=labels.dtype)], dim)
    return compress(labels, ctx.state.uf)


@rule("mean", "sum", "amax", "amin", "var", "std", "max", "min", "logsumexp", "norm", "softmax", "_softmax",
      "log_softmax", "_log_softmax")
def reduction(node, ctx):
    labels = ctx.labels(node.args[0])
    rank = labels.dim()
    name = ctx.op(node)
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if name in ("norm",):
        dims = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim")
    if isinstance(dims, int):
        dims = [dims]
    if not isinstance(dims, (list, tuple)) or (name in ("max", "min") and len(node.args) < 2):
        dims = list(range(rank))
    dims = [d % rank for d in dims] if rank else []
    keep = node.args[2] if len(node.args) > 2 and isinstance(node.args[2], bool) else node.kwargs.get("keepdim", False)
    if name in ("mean", "var", "std") and keep and dims == [rank - 1] and labels.shape[-1] > 1:
        # a statistic over the channel-last dim, broadcast back (RMSNorm / LayerNorm written by
        # hand): removing channels changes it, as for layer_norm: approximate, not blocked
        if any(s > 1 for s in labels.shape[:-1]):  # one statistic per row of a grid (QK-norm per head)
            grid = labels.reshape(-1, labels.shape[-1])
            ctx.state.grids.append(grid)
            ctx.state.normalised_rows.append(grid)  # approximate unless whole rows go (settle)
            return labels.narrow(-1, 0, 1)  # it goes with its row
        channels = ctx.state.collapse(labels, rank - 1, labels.shape[-1])
        ctx.state.approximate.update(torch.unique(channels[channels >= 0]).tolist())
        return free(out_rank(node))
    if any(labels.shape[d] > 1 for d in dims):
        ctx.state.block(labels, f"{node.target} reduces over channels (module {ctx.module(node)!r})")
        return free(out_rank(node)) if not isinstance(node.meta.get("val"), (list, tuple)) else [free(out_rank(node))] * 2
    if name in ("softmax", "_softmax", "log_softmax", "_log_softmax"):
        return labels
    out = labels if keep else labels.reshape([s for d, s in enumerate(labels.shape) if d not in dims])
    if isinstance(node.meta.get("val"), (list, tuple)):
        return [out, out]
    return out.reshape((1,) * (out_rank(node) - out.dim()) + tuple(out.shape)) if out.dim() < out_rank(node) else out


# ----------------------------------------------------------------------------- layers with weights
def _record(ctx, arg, dim, labels, consumes: bool = False):
    """Note that `dim` of parameter `arg` carries `labels`; `consumes`: it reads them (a layer's
    input channels) rather than producing or normalising them."""
    name = ctx.tensor_name(arg)
    if name is not None:
        ctx.state.slices.append(Slice(name, dim, labels, consumes))
    return name


@rule("conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def convolution(node, ctx):
    x, weight = node.args[0], node.args[1]
    bias = node.args[2] if len(node.args) > 2 else None
    name = ctx.op(node)
    if name == "convolution":
        transposed, groups = node.args[6], node.args[8]
    else:
        transposed = name.startswith("conv_transpose")
        groups = node.args[6] if len(node.args) > 6 else node.kwargs.get("groups", 1)
    w_shape = ctx.shape(weight)
    rank = out_rank(node)
    channel_dim = 1 if rank == len(w_shape) else 0  # unbatched input has no batch dim
    c_in = ctx.shape(x)[channel_dim]
    in_labels = ctx.state.collapse(ctx.labels(x), channel_dim, c_in)
    module = ctx.module(node)
    uf = ctx.state.uf
    if ctx.tensor_name(weight) is None:
        ctx.state.block(in_labels, f"{node.target} with a computed weight (module {module!r})")
        return free(rank)
    # weight [out, in / groups, ...], or transposed [in, out / groups, ...]
    in_dim, out_dim = (0, 1) if transposed else (1, 0)
    c_out = w_shape[1] * groups if transposed else w_shape[0]
    if groups == 1:
        out = uf.fresh(c_out, module)
        _record(ctx, weight, in_dim, in_labels, consumes=True)
        _record(ctx, weight, out_dim, out)
    elif groups == c_in:  # depthwise (with channel multiplier m): output o reads input o // m
        # an output can only go with its input channel (groups must stay equal), so outputs of
        # unprunable inputs (e.g. the model's own input) carry no label
        out = in_labels.repeat_interleave(c_out // c_in)
        _record(ctx, weight, 0, in_labels if transposed else out)
    else:  # grouped: index j of every group goes together, keeping groups equal
        per_in, per_out = c_in // groups, c_out // groups
        grouped_in = in_labels.reshape(groups, per_in)
        uf.union_tensors(grouped_in[0], grouped_in[1:])
        mixed = (grouped_in < 0).any(0) & (grouped_in >= 0).any(0)
        if mixed.any():
            ctx.state.block(grouped_in[:, mixed])
        per_group = uf.fresh(per_out, module)
        out = per_group.repeat(groups)
        if transposed:  # rows are every input channel; columns the outputs within a group
            _record(ctx, weight, 0, grouped_in.max(0).values.repeat(groups), consumes=True)
            _record(ctx, weight, 1, per_group)
        else:
            _record(ctx, weight, 1, grouped_in.max(0).values, consumes=True)
            _record(ctx, weight, 0, out)
    if isinstance(bias, fx.Node):
        _record(ctx, bias, 0, out)
    return with_channels(rank, channel_dim, out)


@rule("linear")
def linear(node, ctx):
    bias = node.args[2] if len(node.args) > 2 else None
    return linear_like(node, ctx, node.args[0], node.args[1], bias)


@rule("addmm")
def addmm(node, ctx):
    """bias + x @ W: GPT-2's Conv1D (weight stored [in, out])."""
    return linear_like(node, ctx, node.args[1], node.args[2], node.args[0], transposed=True)


def linear_like(node, ctx, x, weight, bias, transposed: bool = False):
    """x @ W.T + b (nn.Linear), or x @ W + b with `transposed` (Conv1D, matmul with a parameter):
    the weight's output dim produces fresh channels, its input dim consumes x's."""
    rank = out_rank(node)
    in_labels = ctx.state.collapse(ctx.labels(x), -1, ctx.shape(x)[-1])
    if ctx.tensor_name(weight) is None:
        ctx.state.block(in_labels, f"{node.target} with a computed weight (module {ctx.module(node)!r})")
        return free(rank)
    w_in, w_out = (0, 1) if transposed else (1, 0)
    out = ctx.state.uf.fresh(ctx.shape(weight)[w_out], ctx.module(node))
    _record(ctx, weight, w_in, in_labels, consumes=True)
    _record(ctx, weight, w_out, out)
    if isinstance(bias, fx.Node) and len(ctx.shape(bias)) == 1:
        _record(ctx, bias, 0, out)
    elif isinstance(bias, fx.Node):
        ctx.state.require_whole(with_channels(rank, rank - 1, out), [rank - 1],
                                f"{node.target} with a bias of shape {ctx.shape(bias)} (module {ctx.module(node)!r})")
    return with_channels(rank, rank - 1, out)


@rule("_assert_tensor_metadata", "_assert_scalar", "_assert_async", "sym_constrain_range_for_size",
      "sym_constrain_range", "_print")
def assertion(node, ctx):
    """Checks with no tensor output: nothing flows."""
    return free(0)


@rule("embedding")
def embedding(node, ctx):
    weight = node.args[0]
    out = ctx.state.uf.fresh(ctx.shape(weight)[1], ctx.module(node))
    _record(ctx, weight, 1, out)
    rank = out_rank(node)
    return with_channels(rank, rank - 1, out)


def _per_channel(node, ctx, tensors, channel_dim=1):
    x = node.args[0]
    rank = out_rank(node)
    dim = channel_dim if rank > 1 else 0
    labels = ctx.state.collapse(ctx.labels(x), dim, ctx.shape(x)[dim])
    for t in tensors:
        if isinstance(t, fx.Node) and ctx.shape(t) and ctx.shape(t)[0] == labels.numel():
            _record(ctx, t, 0, labels)
    return labels, with_channels(rank, dim, labels)


@rule("batch_norm", "instance_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
      "native_batch_norm")
def batch_norm(node, ctx):
    labels, out = _per_channel(node, ctx, node.args[1:5])
    return [out, free(1), free(1)] if isinstance(node.meta.get("val"), (list, tuple)) else out


@rule("group_norm", "native_group_norm")
def group_norm(node, ctx):
    name = ctx.op(node)
    groups = node.args[1] if name == "group_norm" else node.args[6]
    tensors = node.args[2:4] if name == "group_norm" else node.args[1:3]
    labels, out = _per_channel(node, ctx, tensors)
    if not any(isinstance(t, fx.Node) for t in tensors):
        ctx.state.block(labels, f"group_norm without affine parameters (module {ctx.module(node)!r}): its group "
                                f"count could not be updated; its channels are not pruned")
        return [out, free(1), free(1)] if isinstance(node.meta.get("val"), (list, tuple)) else out
    grouped = labels.reshape(groups, -1)
    ctx.state.uf.union_each(grouped)
    for g in range(groups):
        if (grouped[g] < 0).any() and (grouped[g] >= 0).any():
            ctx.state.block(grouped[g])
    return [out, free(1), free(1)] if isinstance(node.meta.get("val"), (list, tuple)) else out


@rule("layer_norm", "native_layer_norm", "rms_norm")
def layer_norm(node, ctx):
    x, normalized = node.args[0], node.args[1]
    tensors = node.args[2:4]
    rank = out_rank(node)
    labels = ctx.labels(x)
    if len(normalized) != 1:
        if any(labels.shape[d] > 1 for d in range(rank - len(normalized), rank)):
            ctx.state.block(labels, f"{node.target} over several channel dims (module {ctx.module(node)!r})")
        out = labels
    else:
        channels = ctx.state.collapse(labels, rank - 1, ctx.shape(x)[-1])
        for t in tensors:
            if isinstance(t, fx.Node):
                _record(ctx, t, 0, channels)
        if not any(isinstance(t, fx.Node) for t in tensors):
            ctx.state.block(channels, f"{node.target} without affine parameters (module {ctx.module(node)!r})")
        ctx.state.approximate.update(torch.unique(channels[channels >= 0]).tolist())
        out = with_channels(rank, rank - 1, channels)
    return [out, free(rank), free(rank)] if isinstance(node.meta.get("val"), (list, tuple)) else out


@rule("prelu", "_prelu_kernel")
def prelu(node, ctx):
    return _per_channel(node, ctx, [node.args[1]])[1]


RULES[operator.getitem.__name__] = getitem
