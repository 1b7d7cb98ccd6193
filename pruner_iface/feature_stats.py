"""Per-input-feature statistics of the modules that consume a unit's output: a Linear's columns,
a conv's input channels. Shared by the activation metrics and the calibration mechanisms."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd

from .distributed import sum_across_ranks_, sum_counts
from .metrics.base import run_forward_passes


def feature_rows(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A module's input as ``[features, samples]`` (channels of a conv, the last dim otherwise)."""
    weight = getattr(module, "weight", None)
    channel_dim = 1 if isinstance(weight, torch.Tensor) and weight.dim() > 2 else -1
    return x.movedim(channel_dim, 0).reshape(x.shape[channel_dim], -1)


def consumed_features(ref, dim: int, idx: torch.Tensor) -> torch.Tensor:
    """Input features of the module that weight indices `idx` along `dim` read (grouped convs:
    the same column in every group)."""
    groups = getattr(ref.module, "groups", 1)
    if groups > 1 and ref.weight.dim() > 2:
        per_group = ref.weight.shape[1]
        return (idx.reshape(1, -1) + per_group * torch.arange(groups).reshape(-1, 1)).reshape(-1)
    return idx


@dataclass
class Moments:
    """Count, sum and sum of squares of each input feature over the calibration samples."""

    count: int
    total: torch.Tensor
    squares: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        return self.total / max(self.count, 1)

    @property
    def variance(self) -> torch.Tensor:
        """Population variance, clamped at 0 against rounding."""
        return (self.squares / max(self.count, 1) - self.mean.pow(2)).clamp_min(0)


def input_moments(model: nn.Module, modules, data, loss_fn, batches: int | None, who: str) -> dict:
    """:class:`Moments` of every module's input features over `data` (float64 sums)."""
    out: dict[nn.Module, Moments] = {}

    def hook(module, inputs):
        rows = feature_rows(module, inputs[0].detach().double())
        if module not in out:
            out[module] = Moments(0, torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device),
                                  torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device))
        m = out[module]
        m.count += rows.shape[1]
        m.total += rows.sum(1)
        m.squares += rows.pow(2).sum(1)

    run_forward_passes(model, modules, hook, data, loss_fn, batches, who)
    order = [m for m in ordered_modules(modules, model) if m in out]
    sum_across_ranks_(t for m in order for t in (out[m].total, out[m].squares))
    for m, count in zip(order, sum_counts([out[m].count for m in order])):
        out[m].count = count
    return out


def ordered_modules(modules, model: nn.Module) -> list[nn.Module]:
    """`modules` in the model's registration order: the same on every rank."""
    wanted = set(modules)
    return [m for m in model.modules() if m in wanted]


def consumed_columns(ref, dim: int, idx: torch.Tensor) -> torch.Tensor:
    """The weight columns that read the features ``consumed_features(ref, dim, idx)``, in that order,
    as ``[features, outputs, kernel positions]`` (zeros where a grouped conv's output does not read
    the feature). `dim` is the weight's input dim (1 for Linear/conv, 0 for Hugging Face Conv1D)."""
    weight = ref.weight.detach()
    picked = weight.index_select(dim, idx.to(weight.device)).movedim(dim, 0)  # [len, out, *kernel]
    picked = picked.reshape(picked.shape[0], picked.shape[1], -1)
    groups = getattr(ref.module, "groups", 1) if weight.dim() > 2 else 1
    if groups == 1:
        return picked
    per_out = picked.shape[1] // groups
    out = picked.new_zeros(groups, *picked.shape)
    for g in range(groups):
        rows = slice(g * per_out, (g + 1) * per_out)
        out[g, :, rows] = picked[:, rows]
    return out.reshape(-1, *picked.shape[1:])


def unfolded(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What each output of a Linear / Hugging Face Conv1D / Conv1d / Conv2d reads, as
    ``[groups, samples, columns]``: a conv's input patches per group, columns ordered as
    ``matrix_view`` orders one group's weight (kernel positions outer, channels inner). The conv
    must pad with zeros by numbers (not "same")."""
    if not isinstance(module, _ConvNd):
        return x.reshape(1, -1, x.shape[-1])
    kernel, stride, dilation = module.kernel_size, module.stride, module.dilation
    padding = (0,) * len(kernel) if module.padding == "valid" else module.padding
    if len(kernel) == 1:  # a Conv1d is a Conv2d over a height of 1
        x, kernel, stride, dilation, padding = (x.unsqueeze(-2), (1, *kernel), (1, *stride), (1, *dilation),
                                                (0, *padding))
    batch, channels = x.shape[:2]
    groups = module.groups
    per_group = channels // groups
    patches = F.unfold(x.reshape(batch * groups, per_group, *x.shape[2:]), kernel, dilation, padding, stride)
    positions = kernel[0] * kernel[1]
    patches = patches.reshape(batch, groups, per_group, positions, patches.shape[-1]).permute(1, 0, 4, 3, 2)
    return patches.reshape(groups, -1, positions * per_group)
