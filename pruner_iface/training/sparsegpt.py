"""`sparsegpt`: SparseGPT's weight reconstruction (Frantar & Alistarh, "SparseGPT: Massive Language
Models Can Be Accurately Pruned in One-Shot", ICML 2023), applied when a pruning step masks.

Per layer, H = XᵀX over the calibration inputs (a conv's unfolded patches), damped by
`damp`·mean(diag H). Columns are processed left to right in blocks of `block_size`, with U the
upper Cholesky factor of H⁻¹: pruning weight w_q of a row adds −(w_q/U_qq)·U_{q,q:} to the rest
of that row (the OBS update restricted to the columns not yet processed).

The step's allocation fixes how many weights go where; with `adaptive` (the paper's adaptive mask
selection) *which* go is chosen during the pass, by the lowest w²/U_qq² of the already-updated
weights: per block of columns for the `element` target (each block losing the layer's share in
proportion to its size, the paper's per-block sparsity; per row with scope="row"), per group of
m as the pass reaches it for `n:m`. Without `adaptive` the allocation's mask is kept as it is
(any target whose units are pieces of one Linear/Conv2d weight, e.g. blocks).

Differences from the reference code: every layer's H comes from one pass over the model as it
is before the step (the reference feeds each transformer block the outputs of the blocks
already pruned); inputs that never fire get H_ii = 1 but their weights are left as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import sum_across_ranks_
from ..errors import ConfigError, PrunerError
from ..feature_stats import ordered_modules, unfolded
from ..metrics.base import check_batches, run_forward_passes
from ..registry import check
from ..targets.base import TensorLayer, from_matrix, matrix_view
from ..targets.element import ElementLayer, RowElementLayer
from ..targets.nm import NMLayer
from .base import MaskChange, Mechanism, register_mechanism


@register_mechanism("sparsegpt")
@dataclass
class SparseGPT(Mechanism):
    block_size: int = 128
    damp: float = 0.01
    adaptive: bool = True
    batches: int | None = None

    requires_data = True

    def __post_init__(self) -> None:
        check(isinstance(self.block_size, int) and not isinstance(self.block_size, bool) and self.block_size >= 1,
              "block_size", f"must be a positive integer; got {self.block_size!r}")
        check(isinstance(self.damp, (int, float)) and not isinstance(self.damp, bool) and self.damp >= 0,
              "damp", f"must be a number >= 0 (a fraction of H's mean diagonal); got {self.damp!r}")
        check(isinstance(self.adaptive, bool), "adaptive", f"must be true or false; got {self.adaptive!r}")
        check_batches(self.batches)

    def bind(self, context) -> None:
        super().bind(context)
        for layer in context.layers:
            _check_module(layer)
            if self.adaptive and not isinstance(layer, (ElementLayer, NMLayer)):
                raise ConfigError(
                    f"training.sparsegpt: adaptive mask selection re-chooses single weights, which would break the "
                    f"units of layer {layer.name!r} ({type(layer).__name__}); use the element or n:m target, or "
                    f"adaptive=false to keep the allocation's mask and only update the weights")
            if self.adaptive and isinstance(layer, NMLayer) and self.block_size % layer.m:
                raise ConfigError(f"training.sparsegpt.block_size: {self.block_size} is not a multiple of m={layer.m} "
                                  f"of the n:m target (layer {layer.name!r}); use e.g. 128")
        self._hessians: dict[nn.Module, torch.Tensor] = {}

    def collect(self, model, data, loss_fn) -> None:
        hessians: dict[nn.Module, torch.Tensor] = {}

        def hook(module, inputs):
            x = unfolded(module, inputs[0].detach().double())[0]
            h = x.T @ x
            hessians[module] = h if module not in hessians else hessians[module] + h

        modules = {layer.module for layer in self.context.layers}
        run_forward_passes(model, modules, hook, data, loss_fn, self.batches, "training mechanism 'sparsegpt'")
        sum_across_ranks_(hessians[m] for m in ordered_modules(modules, model) if m in hessians)
        self._hessians = hessians

    def reconstruct(self, changes: list[MaskChange]) -> list[MaskChange]:
        updates = []  # everything is computed before any weight is written
        for change in changes:
            layer = change.layer
            if layer.module not in self._hessians:
                raise PrunerError(f"training.sparsegpt saw no input for {layer.name!r} in the calibration data; "
                                  f"make sure loss_fn's forward pass reaches it")
            weight = matrix_view(layer.weight.detach()).double()
            old = layer.current_mask()
            old_pruned = torch.zeros_like(weight, dtype=torch.bool) if old is None else ~matrix_view(old)
            new_pruned = ~matrix_view(change.masks[(layer.module, layer.param_name)])
            regions = _regions(layer, new_pruned, old_pruned, self.block_size) if self.adaptive else None
            inverse = _inverse_factor(self._hessians[layer.module], self.damp, layer.name)
            weight, pruned = obs_prune(weight, inverse, new_pruned | old_pruned, old_pruned, self.block_size, regions)
            updates.append((change, weight, pruned))
        out = []
        for change, weight, pruned in updates:
            layer = change.layer
            with torch.no_grad():
                layer.weight.copy_(from_matrix(weight, layer.weight.shape).to(layer.weight.dtype))
            keep = from_matrix(~pruned, layer.weight.shape)
            after = ~layer.group(keep).all(-1) if self.adaptive else change.after  # element, n:m: any weight gone
            out.append(MaskChange(layer, change.before, after, change.member_scores,
                                  {(layer.module, layer.param_name): keep}))
        return out


def _check_module(layer) -> None:
    if not isinstance(layer, TensorLayer) or layer.param_name != "weight":
        raise ConfigError(f"training.sparsegpt updates single weight matrices; layer {layer.name!r} is a coupled "
                          f"group (use the element, n:m or block target, or the flap preset for structures)")
    module = layer.module
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or module.padding_mode != "zeros" or module.padding == "same":
            raise ConfigError(f"training.sparsegpt: conv {layer.name!r} has groups={module.groups}, "
                              f"padding={module.padding!r}, padding_mode={module.padding_mode!r}; supported: "
                              f"groups=1 with zero padding given as numbers")
    elif type(module) is not nn.Linear:
        raise ConfigError(f"training.sparsegpt: module {layer.name!r} is a {type(module).__name__}; supported: "
                          f"Linear and Conv2d (exclude the others)")


def _inverse_factor(hessian: torch.Tensor, damp: float, name: str) -> torch.Tensor:
    """Upper Cholesky factor of the damped H⁻¹."""
    h = hessian.clone()
    diag = torch.diagonal(h)
    diag[diag == 0] = 1.0
    diag += damp * diag.mean()
    chol, info = torch.linalg.cholesky_ex(h)
    if int(info) == 0:
        inverse = torch.cholesky_inverse(chol)
        upper, info = torch.linalg.cholesky_ex(inverse, upper=True)
    if int(info) != 0:
        raise PrunerError(f"training.sparsegpt: the input Hessian of {name!r} is not positive definite with "
                          f"damp={damp}; raise damp (e.g. 0.1) or give more calibration data. Nothing was pruned")
    return upper


@dataclass
class _Regions:
    """Where adaptive selection happens: spans of `width` columns; per row or over all rows;
    `counts` [rows or 1, spans] weights to prune in each."""

    width: int
    per_row: bool
    counts: torch.Tensor


def _regions(layer, new_pruned: torch.Tensor, old_pruned: torch.Tensor, block: int) -> _Regions:
    rows, cols = new_pruned.shape
    if isinstance(layer, NMLayer):
        width, per_row = layer.m, True
    else:
        width, per_row = block, isinstance(layer, RowElementLayer)
    spans = -(-cols // width)
    pad = spans * width - cols

    def per_span(mask: torch.Tensor) -> torch.Tensor:
        counts = F.pad(mask.long(), (0, pad)).reshape(rows, spans, width).sum(-1)
        return counts if per_row else counts.sum(0, keepdim=True)

    counts, forced = per_span(new_pruned), per_span(old_pruned)
    if not isinstance(layer, NMLayer):  # each block its share of the row's / layer's count
        sizes = torch.full((spans,), width, dtype=torch.long)
        sizes[-1] = cols - width * (spans - 1)
        shared = _split(counts.sum(1), sizes)
        if bool((shared >= forced).all()):
            counts = shared
    return _Regions(width, per_row, counts)


def _split(totals: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Each total split over spans in proportion to `sizes`, largest remainders first."""
    exact = totals.double().unsqueeze(1) * sizes.double() / sizes.sum()
    base = exact.floor().long()
    left = totals - base.sum(1)
    order = (exact - base).argsort(dim=1, descending=True, stable=True)
    bonus = torch.zeros_like(base).scatter_(1, order, (torch.arange(sizes.numel()) < left.unsqueeze(1)).long())
    return base + bonus


def _choose(scores: torch.Tensor, forced: torch.Tensor, counts: torch.Tensor, per_row: bool) -> torch.Tensor:
    """The lowest-scoring `counts` weights (per row, or over the whole span), forced ones first."""
    scores = scores.masked_fill(forced, float("-inf"))
    if not per_row:
        flat = scores.reshape(-1)
        pruned = torch.zeros_like(flat, dtype=torch.bool)
        pruned[flat.argsort(stable=True)[: int(counts)]] = True
        return pruned.reshape(scores.shape)
    rank = torch.empty_like(scores, dtype=torch.long)
    rank.scatter_(1, scores.argsort(dim=1, stable=True), torch.arange(scores.shape[1]).expand_as(scores).contiguous())
    return rank < counts.reshape(-1, 1)


def obs_prune(weight: torch.Tensor, inverse: torch.Tensor, new_pruned: torch.Tensor, old_pruned: torch.Tensor,
              block: int, regions: _Regions | None) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT's pass over ``weight`` [rows, cols] with `inverse` the upper Cholesky factor of
    H⁻¹; returns the updated weight (pruned entries zero) and the pruned mask."""
    weight = weight.clone()
    rows, cols = weight.shape
    pruned = new_pruned.clone() if regions is None else torch.zeros_like(new_pruned)
    for start in range(0, cols, block):
        end = min(start + block, cols)
        w = weight[:, start:end].clone()
        u = inverse[start:end, start:end]
        d = torch.diagonal(u)
        errors = torch.zeros_like(w)
        for j in range(end - start):
            col = start + j
            if regions is not None and col % regions.width == 0:
                span = col // regions.width
                stop = min(col + regions.width, cols)
                pick = _choose(w[:, j:j + stop - col].pow(2) / d[j:j + stop - col].pow(2),
                               old_pruned[:, col:stop], regions.counts[:, span], regions.per_row)
                pruned[:, col:stop] = pick
            err = torch.where(pruned[:, col], w[:, j], torch.zeros_like(w[:, j])) / d[j]
            w[:, j:] -= err.unsqueeze(1) * u[j, j:].unsqueeze(0)
            w[:, j] = torch.where(pruned[:, col], torch.zeros_like(w[:, j]), w[:, j])
            errors[:, j] = err
        weight[:, start:end] = w
        weight[:, end:] -= errors @ inverse[start:end, end:]
    return weight, pruned
