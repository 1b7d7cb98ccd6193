"""Speed-up for the `channel` target: slice every member tensor of the pruned groups and update
module attributes so the result is an ordinary, smaller nn.Module.

All slicing is planned and checked first; the model is changed only once the whole plan holds.
"""
from __future__ import annotations

from torch import nn

from ..errors import SpeedUpError
from ..masks import get_mask, remove_mask

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
          nn.SyncBatchNorm)


def shrink_groups(model: nn.Module, groups: list) -> nn.Module:
    """Remove every member slice of `groups` from `model` (in place) and return it."""
    removed: dict[str, dict[int, set[int]]] = {}
    for group in groups:
        for m in group.members:
            removed.setdefault(m.tensor, {}).setdefault(m.dim, set()).update(m.indices.tolist())
    plan = []
    for name, dims in removed.items():
        path, _, attr = name.rpartition(".")
        try:
            module = model.get_submodule(path)
        except AttributeError:
            raise SpeedUpError(f"tensor {name!r} of a pruned group is not in the model any more") from None
        tensor = getattr(module, attr)
        keep = {}
        for dim, drop in dims.items():
            kept = [i for i in range(tensor.shape[dim]) if i not in drop]
            if not kept:
                raise SpeedUpError(f"pruning would remove every slice of dim {dim} of {name!r}")
            keep[dim] = kept
        plan.append((module, attr, keep))
    old = {id(m): _sizes(m) for m, _, _ in plan}
    for module, attr, keep in plan:
        tensor = getattr(module, attr)
        if get_mask(module, attr) is not None:
            remove_mask(module, attr)
            tensor = getattr(module, attr)
        new = tensor.detach()
        for dim, kept in keep.items():
            new = new.index_select(dim, _index(kept, new.device))
        if isinstance(tensor, nn.Parameter):
            setattr(module, attr, nn.Parameter(new.clone(), requires_grad=tensor.requires_grad))
        else:
            module._buffers[attr] = new.clone()
    for module, _, _ in plan:
        _update_attributes(module, old[id(module)])
    return model


def _index(kept, device):
    import torch

    return torch.tensor(kept, dtype=torch.long, device=device)


def _sizes(module: nn.Module) -> dict:
    return {k: getattr(module, k) for k in ("in_channels", "out_channels", "groups", "num_groups", "num_channels")
            if hasattr(module, k)}


def _update_attributes(module: nn.Module, old: dict) -> None:
    """Bring size attributes in line with the sliced tensors."""
    w = getattr(module, "weight", None)
    if isinstance(module, _CONVS):
        if old["groups"] == old["in_channels"] and old["groups"] > 1:  # depthwise, with multiplier m
            multiplier = old["out_channels"] // old["in_channels"]
            module.out_channels = w.shape[0]
            module.in_channels = module.groups = w.shape[0] // multiplier
        else:
            module.out_channels = w.shape[0]
            module.in_channels = w.shape[1] * module.groups
    elif isinstance(module, _TRANSPOSED):
        module.in_channels = w.shape[0]
        module.out_channels = w.shape[1] * module.groups
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = w.shape
    elif isinstance(module, _NORMS):
        ref = w if w is not None else module.running_mean
        module.num_features = ref.shape[0]
    elif isinstance(module, nn.GroupNorm):
        per_group = old["num_channels"] // old["num_groups"]
        module.num_channels = w.shape[0]
        module.num_groups = w.shape[0] // per_group
    elif isinstance(module, nn.LayerNorm) and w is not None:
        module.normalized_shape = tuple(module.normalized_shape[:-1]) + (w.shape[0],)
    elif isinstance(module, nn.Embedding):
        module.num_embeddings, module.embedding_dim = w.shape
    elif isinstance(module, nn.PReLU):
        module.num_parameters = w.shape[0]
