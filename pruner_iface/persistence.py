"""Save a pruned model as weights plus a shape spec, and rebuild it from a fresh original model.

The file holds only tensors, strings and integers (loadable with ``torch.load(weights_only=True)``),
so no code is pickled: the user constructs the original architecture, and :func:`load_pruned`
shrinks it to the saved shapes, updates module size attributes (and the head counts and widths
that attention modules and a Hugging Face config hold), and loads the weights.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from .errors import InputError
from .masks import masked_params, set_mask
from .speedup.graph import sizes_of, update_attributes
from .speedup.rows import KeptRows
from .speedup.transformer import apply_size_attributes, size_attributes

FORMAT = "pruner_iface.pruned/1"


def save_pruned(model: nn.Module, path: str | os.PathLike) -> None:
    """Write the state dict, every tensor's shape and the masked parameters to `path`."""
    if any(isinstance(m, KeptRows) for m in model.modules()):
        raise InputError("save_pruned cannot describe modules replaced by the channel-local speed-up; "
                         "use torch.save(model) or the graph-aware 'channel' target")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    masked = [f"{name}.{param}" if name else param for name, _, param, _ in masked_params(model)]
    torch.save({"format": FORMAT, "shapes": {k: list(v.shape) for k, v in state.items()},
                "masked": masked, "state_dict": state, "attributes": size_attributes(model)}, os.fspath(path))


def load_pruned(path: str | os.PathLike, model: nn.Module) -> nn.Module:
    """Shrink a freshly constructed original `model` to the saved shapes and load the weights."""
    try:
        saved = torch.load(os.fspath(path), weights_only=True)
    except Exception as exc:
        raise InputError(f"{os.fspath(path)!r} is not a readable pruned-model file: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise InputError(f"{os.fspath(path)!r} is not a pruner_iface pruned-model file (format {FORMAT})")
    masked = set(saved["masked"])
    mask_buffers = {f"{name}_mask" for name in masked}
    state = {k: v for k, v in saved["state_dict"].items() if k not in mask_buffers}
    own = model.state_dict()
    missing = [k for k in state if k not in own]
    if missing:
        raise InputError(f"the model has no tensor(s) {missing[:5]}: is it the architecture that was pruned?")
    touched: dict[int, tuple[nn.Module, dict]] = {}
    replaced: dict[int, torch.Tensor] = {}  # tied tensors stay tied
    for key, value in state.items():
        path_, _, attr = key.rpartition(".")
        module = model.get_submodule(path_)
        current = getattr(module, attr)
        if id(current) not in replaced and tuple(current.shape) == tuple(value.shape):
            continue
        touched.setdefault(id(module), (module, sizes_of(vars(module))))
        if id(current) not in replaced:
            empty = torch.empty(value.shape, dtype=current.dtype, device=current.device)
            replaced[id(current)] = nn.Parameter(empty, requires_grad=current.requires_grad) \
                if isinstance(current, nn.Parameter) else empty
        store = module._parameters if isinstance(current, nn.Parameter) else module._buffers
        store[attr] = replaced[id(current)]
    for module, old in touched.values():
        update_attributes(module, old)
    apply_size_attributes(model, saved.get("attributes", {}))
    model.load_state_dict(state, strict=True)
    for name in masked:
        path_, _, attr = name.rpartition(".")
        module = model.get_submodule(path_)
        set_mask(module, attr, saved["state_dict"][f"{name}_mask"])
    return model
