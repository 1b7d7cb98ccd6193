"""Speed-up for the `channel` target: slice every member tensor of the pruned groups and update
module attributes so the result is an ordinary, smaller nn.Module.

The model's code runs again after shrinking, and sizes it hard-codes cannot be seen in the
trace; so the shrunk model is run on the example inputs and, if it fails or its outputs change
shape, every tensor and attribute is put back and SpeedUpError names the failure.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..errors import SpeedUpError
from ..inputs import eval_mode, normalize_inputs
from ..masks import get_mask, mask_name, refresh_hooks, remove_mask

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
          nn.SyncBatchNorm)


def shrink_groups(model: nn.Module, groups: list, example_inputs: Any) -> nn.Module:
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
    expected = _output_shapes(model, example_inputs)
    modules = {id(m): m for m, _, _ in plan}
    saved = {mid: (dict(m._parameters), dict(m._buffers), dict(vars(m))) for mid, m in modules.items()}
    try:
        for module, attr, keep in plan:
            _slice(module, attr, keep)
        for mid, module in modules.items():
            update_attributes(module, sizes_of(saved[mid][2]))
            refresh_hooks(module)
        if _output_shapes(model, example_inputs) != expected:
            raise SpeedUpError("the shrunk model's outputs changed shape")
    except Exception as exc:
        for mid, module in modules.items():
            params, buffers, attrs = saved[mid]
            module._parameters.clear()
            module._parameters.update(params)
            module._buffers.clear()
            module._buffers.update(buffers)
            vars(module).update({k: v for k, v in attrs.items() if not k.startswith("_")})
            refresh_hooks(module)
        raise SpeedUpError(
            f"the shrunk model does not run on the example inputs ({type(exc).__name__}: {exc}); its code "
            f"probably hard-codes a channel count. The model was left as it was"
        ) from exc
    for module, attr, _ in plan:  # structured masks are all-true after slicing: drop them
        mask = get_mask(module, attr)
        if mask is not None and bool(mask.all()):
            remove_mask(module, attr)
    return model


def _slice(module: nn.Module, attr: str, keep: dict[int, list[int]]) -> None:
    tensor = getattr(module, attr)
    mask = get_mask(module, attr)
    new, new_mask = tensor.detach(), mask
    for dim, kept in keep.items():
        index = torch.tensor(kept, dtype=torch.long, device=tensor.device)
        new = new.index_select(dim, index)
        if new_mask is not None:
            new_mask = new_mask.index_select(dim, index)
    if isinstance(tensor, nn.Parameter):
        module._parameters[attr] = nn.Parameter(new.clone(), requires_grad=tensor.requires_grad)
    else:
        module._buffers[attr] = new.clone()
    if new_mask is not None:
        module._buffers[mask_name(attr)] = new_mask


def _output_shapes(model: nn.Module, example_inputs: Any) -> list:
    args, kwargs = normalize_inputs(example_inputs)
    with torch.no_grad(), eval_mode(model):
        out = model(*args, **kwargs)
    return [tuple(t.shape) for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def sizes_of(attrs: dict) -> dict:
    return {k: attrs[k] for k in ("in_channels", "out_channels", "groups", "num_groups", "num_channels") if k in attrs}


def update_attributes(module: nn.Module, old: dict) -> None:
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
