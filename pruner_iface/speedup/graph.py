"""Speed-up for the `channel` target: slice every member tensor of the pruned groups and update
module attributes so the result is an ordinary, smaller nn.Module.

The model's code runs again after shrinking, and sizes it hard-codes cannot be seen in the
trace; so the shrunk model is run on the example inputs and compared with the masked model. If it
fails, or its outputs differ (beyond LayerNorm's measured approximation), every tensor and
attribute is put back and SpeedUpError names the failure.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from ..errors import SpeedUpError
from ..inputs import eval_mode, normalize_inputs, output_tensors
from ..masks import get_mask, mask_name, refresh_hooks, remove_mask
from .transformer import head_counts, restore_attention, update_attention, update_config

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
          nn.SyncBatchNorm)


APPROXIMATE_LIMIT = 1.0  # normalisation over pruned channels: measured and reported, gross errors refused


def shrink_groups(model: nn.Module, groups: list, example_inputs: Any,
                  heads: dict | None = None, outputs: list | None = None,
                  widths: dict[str, int] | None = None) -> float:
    """Remove every member slice of `groups` from `model` (in place); return the measured largest
    difference of the shrunk model's outputs from the masked model's (relative). `heads`
    (attention module -> graph.AttentionHeads) drives head-count attribute updates;
    `outputs` (group label per position of each output) says which output positions go, where
    outputs are not protected; `widths` ("intermediate"/"hidden" -> the kept width shared by
    every such layer) is what a Hugging Face config records."""
    exact = [g for g in groups if not g.approximate]
    if exact and len(exact) < len(groups):
        _check_exact_part(model, exact, example_inputs, heads, outputs)
    removed: dict[str, dict[int, set[int]]] = {}
    pruned = torch.tensor(sorted({g.label for g in groups}), dtype=torch.long)
    for column in groups[0].columns if groups else []:
        idx = torch.isin(column.labels, pruned).nonzero().reshape(-1)
        if idx.numel():
            removed.setdefault(column.tensor, {}).setdefault(column.dim, set()).update(idx.tolist())
    holders = _holders(model)
    plan = []
    for name, dims in removed.items():
        path, _, attr = name.rpartition(".")
        try:
            tensor = getattr(model.get_submodule(path), attr)
        except AttributeError:
            raise SpeedUpError(f"tensor {name!r} of a pruned group is not in the model any more") from None
        keep = {}
        for dim, drop in dims.items():
            kept = [i for i in range(tensor.shape[dim]) if i not in drop]
            if not kept:
                raise SpeedUpError(f"pruning would remove every slice of dim {dim} of {name!r}")
            keep[dim] = kept
        plan.append((holders[id(tensor)], keep))  # a tied tensor is replaced in every module holding it
    approximate = any(g.approximate for g in groups)
    pruned_labels = {g.label for g in groups}
    expected = _kept_outputs(_outputs(model, example_inputs), outputs or [], pruned_labels)
    modules = {id(m): m for owners, _ in plan for m, _ in owners}
    saved = {mid: (dict(m._parameters), dict(m._buffers), dict(vars(m))) for mid, m in modules.items()}
    counts = head_counts(heads or {}, pruned_labels)
    attention_saved: dict = {}
    config_saved: dict = {}
    parked: list = []
    try:
        for owners, keep in plan:
            parked.append(_slice(owners, keep))
        for mid, module in modules.items():
            update_attributes(module, sizes_of(saved[mid][2]))
            refresh_hooks(module)
        attention_saved = update_attention(model, counts)
        config_saved = update_config(model, counts, widths or {})
        difference = _difference(expected, _outputs(model, example_inputs))
        if difference > (APPROXIMATE_LIMIT if approximate else 1e-4):
            raise SpeedUpError(f"the shrunk model's outputs differ from the masked model's by {difference:.2e} "
                               f"(relative); a coupling was not understood")
    except Exception as exc:
        for undo in parked:
            if undo is not None:
                _unpark(undo)
        for mid, module in modules.items():
            params, buffers, attrs = saved[mid]
            module._parameters.clear()
            module._parameters.update(params)
            module._buffers.clear()
            module._buffers.update(buffers)
            vars(module).update({k: v for k, v in attrs.items() if not k.startswith("_")})
            refresh_hooks(module)
        restore_attention(attention_saved)
        for key, value in config_saved.items():
            setattr(model.config, key, value)
        raise SpeedUpError(
            f"speed_up was undone, the model is as it was: {type(exc).__name__}: {exc}. If the model's code "
            f"hard-codes a channel count, or computes a value from one at run time (an attention scale "
            f"q.shape[-1] ** -0.5), exclude the modules around it"
        ) from exc
    if approximate and difference > 1e-4:
        warnings.warn(f"pruner_iface: pruned channels were normalised together with kept ones (LayerNorm/RMSNorm); "
                      f"the shrunk model differs from the masked one by {difference:.2e} of the output scale")
    for owners, _ in plan:  # structured masks are all-true after slicing: drop them
        for module, attr in owners:
            mask = get_mask(module, attr)
            if mask is not None and bool(mask.all()):
                remove_mask(module, attr)
    return difference


def _check_exact_part(model: nn.Module, exact: list, example_inputs: Any, heads, outputs) -> None:
    """With normalised groups pruned, the output check can only bound the difference; so the
    other groups (heads, neurons, channels outside normalisations) are first shrunk alone on a
    copy, where the normalised channels are still there, masked, and must match exactly. A
    coupling the rules got wrong then fails here instead of hiding in the approximation."""
    try:
        trial = copy.deepcopy(model)
    except Exception as exc:  # nothing has been changed yet
        raise SpeedUpError(f"the model is as it was: it cannot be copied to check the pruned groups outside "
                           f"normalisations on their own ({type(exc).__name__}: {exc})") from exc
    try:
        shrink_groups(trial, exact, example_inputs, heads, outputs)
    except SpeedUpError as exc:
        raise SpeedUpError(f"the model is as it was: shrinking the pruned groups outside normalisations alone "
                           f"does not reproduce the masked model ({exc.__cause__ or exc})") from exc


def _holders(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """Every (module, attribute) holding each parameter or buffer (tied tensors have several)."""
    out: dict[int, list] = {}
    for module in model.modules():
        for store in (module._parameters, module._buffers):
            for attr, tensor in store.items():
                if tensor is not None:
                    out.setdefault(id(tensor), []).append((module, attr))
    return out


def _difference(expected: list, actual: list) -> float:
    """Largest absolute difference relative to the output scale; inf if shapes differ."""
    if len(expected) != len(actual) or any(a.shape != b.shape for a, b in zip(expected, actual)):
        return float("inf")
    worst = 0.0
    for a, b in zip(expected, actual):
        if a.is_floating_point() and a.numel():
            worst = max(worst, float((a - b).abs().max()) / max(1.0, float(a.abs().max())))
        elif not torch.equal(a, b):
            return float("inf")
    return worst


def _slice(owners: list[tuple[nn.Module, str]], keep: dict[int, list[int]]) -> tuple | None:
    """Replace the tensor in every module holding it by its kept slice; returns how to undo it."""
    module, attr = owners[0]
    tensor = getattr(module, attr)
    new = tensor.detach()
    for dim, kept in keep.items():
        new = new.index_select(dim, torch.tensor(kept, dtype=torch.long, device=tensor.device))
    replacement = nn.Parameter(new, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else new
    for module, attr in owners:
        mask = get_mask(module, attr)
        if isinstance(tensor, nn.Parameter):
            module._parameters[attr] = replacement
        else:
            module._buffers[attr] = replacement
        if mask is not None:
            for dim, kept in keep.items():
                mask = mask.index_select(dim, torch.tensor(kept, dtype=torch.long, device=mask.device))
            module._buffers[mask_name(attr)] = mask
    return _park(tensor, keep, owners[0])


def _park(tensor: torch.Tensor, keep: dict[int, list[int]], owner: tuple[nn.Module, str]) -> tuple | None:
    """Until the shrunk model is validated, the original tensor object keeps only the slices that
    were removed (the kept ones live in the replacement), so the original storage is freed at
    once: at 1B parameters this is the difference between 2.2x and 1.8x the model's memory.
    Tensors sliced along several dims keep their full storage."""
    if len(keep) != 1:
        return None
    (dim, kept), = keep.items()
    kept_index = torch.tensor(kept, dtype=torch.long, device=tensor.device)
    dropped = torch.ones(tensor.shape[dim], dtype=torch.bool, device=tensor.device)
    dropped[kept_index] = False
    dropped_index = dropped.nonzero().reshape(-1)
    shape = tensor.shape
    tensor.data = tensor.detach().index_select(dim, dropped_index)
    return tensor, dim, kept_index, dropped_index, shape, owner


def _unpark(undo: tuple) -> None:
    """Rebuild the original tensor in place from its removed slices and the replacement's."""
    tensor, dim, kept_index, dropped_index, shape, (module, attr) = undo
    full = torch.empty(shape, dtype=tensor.dtype, device=tensor.device)
    full.index_copy_(dim, kept_index, getattr(module, attr).detach())
    full.index_copy_(dim, dropped_index, tensor.data)
    tensor.data = full


def _outputs(model: nn.Module, example_inputs: Any) -> list:
    args, kwargs = normalize_inputs(example_inputs)
    with torch.no_grad(), eval_mode(model):
        out = model(*args, **kwargs)
    return [t.detach().clone() for t in output_tensors(out)]


def _kept_outputs(values: list, labels: list, pruned: set[int]) -> list:
    """The masked model's outputs without the positions that pruned groups remove."""
    if len(labels) != len(values) or not pruned:
        return values
    out = []
    for value, lab in zip(values, labels):
        for dim in range(min(value.dim(), lab.dim())):
            if lab.shape[dim] > 1:
                along = lab.movedim(dim, 0).reshape(lab.shape[dim], -1)[:, 0]
                keep = torch.tensor([i for i, root in enumerate(along.tolist()) if root not in pruned])
                value = value.index_select(dim, keep)
        out.append(value)
    return out


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
        if old["groups"] == old["in_channels"] and old["groups"] > 1:  # depthwise: groups follow the inputs
            module.groups = w.shape[0]
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
    elif isinstance(module, (nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))) and w is not None:
        module.normalized_shape = tuple(module.normalized_shape[:-1]) + (w.shape[0],)
    elif isinstance(module, nn.Embedding):
        module.num_embeddings, module.embedding_dim = w.shape
    elif isinstance(module, nn.PReLU):
        module.num_parameters = w.shape[0]
    elif isinstance(getattr(module, "nf", None), int) and isinstance(getattr(module, "nx", None), int) \
            and w is not None and w.dim() == 2:  # Hugging Face Conv1D: weight [nx, nf]
        module.nx, module.nf = w.shape
