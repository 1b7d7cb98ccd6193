"""Graph-free speed-up for `channel-local`: each pruned Linear/ConvNd computes only its kept rows.

Without the dependency graph the consumers of a layer are unknown, so the output keeps its width:
a :class:`KeptRows` module runs the smaller layer and writes its rows back into a zero tensor of
the original width. The result equals the masked model exactly, with fewer parameters and FLOPs.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import SpeedUpError
from ..masks import remove_mask
from ..targets.base import TargetLayer

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class KeptRows(nn.Module):
    """Runs `inner` (the kept rows of a layer) and scatters its output into `full_size` channels."""

    def __init__(self, inner: nn.Module, kept: torch.Tensor, full_size: int, channel_dim: int):
        super().__init__()
        self.inner = inner
        self.register_buffer("kept", kept)
        self.full_size = full_size
        self.channel_dim = channel_dim

    def forward(self, *args, **kwargs):
        y = self.inner(*args, **kwargs)
        dim = self.channel_dim % y.dim()
        shape = list(y.shape)
        shape[dim] = self.full_size
        return y.new_zeros(shape).index_copy_(dim, self.kept, y)

    def extra_repr(self) -> str:
        return f"kept={self.kept.numel()}/{self.full_size}"


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def _check(layer: TargetLayer, owners: dict[int, int]) -> None:
    module = layer.module
    if not layer.name:
        raise SpeedUpError("the root module itself cannot be replaced; wrap it (e.g. nn.Sequential(model))")
    if type(module) not in (nn.Linear, *_CONVS):
        raise SpeedUpError(
            f"module {layer.name!r} is a {type(module).__name__}, a subclass its owner may use other than "
            f"by calling it (nn.MultiheadAttention reads out_proj.weight directly); speed_up replaces plain "
            f"Linear and ConvNd only"
        )
    if owners.get(id(module.weight), 0) > 1:
        raise SpeedUpError(f"module {layer.name!r}: its weight is tied to another module; shrinking it would untie them")
    if isinstance(module, _CONVS):
        if module.groups != 1:
            raise SpeedUpError(
                f"module {layer.name!r}: removing output channels of a grouped convolution "
                f"(groups={module.groups}) needs the dependency graph; exclude it from channel-local pruning"
            )
    elif not isinstance(module, nn.Linear):
        raise SpeedUpError(f"module {layer.name!r} ({type(module).__name__}): speed_up shrinks Linear and ConvNd rows only")


def _shrink(layer: TargetLayer, kept: torch.Tensor) -> nn.Module:
    module = layer.module
    for param_name in ("weight", "bias"):
        remove_mask(module, param_name)
    inner = copy.deepcopy(module)
    with torch.no_grad():
        inner.weight = nn.Parameter(module.weight[kept].clone(), requires_grad=module.weight.requires_grad)
        if isinstance(module.bias, torch.Tensor):
            inner.bias = nn.Parameter(module.bias[kept].clone(), requires_grad=module.bias.requires_grad)
    if isinstance(module, nn.Linear):
        inner.out_features = int(kept.numel())
        return KeptRows(inner, kept, module.out_features, channel_dim=-1)
    inner.out_channels = int(kept.numel())
    spatial = len(module.kernel_size)  # channel dim counted from the end: batched or not
    return KeptRows(inner, kept, module.out_channels, channel_dim=-(spatial + 1))


def speed_up_rows(model: nn.Module, layers: list[TargetLayer]) -> nn.Module:
    """Replace every row-pruned layer of `model` by its shrunk version (checks all before changing any)."""
    owners: dict[int, int] = {}
    for module in model.modules():
        for param in module._parameters.values():
            if param is not None:
                owners[id(param)] = owners.get(id(param), 0) + 1
    work = []
    for layer in layers:
        pruned = layer.current_pruned()
        if pruned.any():
            _check(layer, owners)
            work.append((layer, (~pruned).nonzero().reshape(-1)))
    for layer, kept in work:
        parent, child = _parent(model, layer.name)
        setattr(parent, child, _shrink(layer, kept))
    return model
