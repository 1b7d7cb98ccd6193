"""In-place masks: a bool buffer ``<param>_mask`` per pruned parameter, the weight zeroed in place.

No ``weight_orig`` copy is kept (torch.nn.utils.prune keeps one plus a same-dtype mask). Masked
gradients are zeroed by a tensor hook and masks are re-applied after every ``torch.optim``
optimizer step by one global post-step hook, so momentum or weight decay cannot revive a weight.
A forward pre-hook on each masked module re-attaches these hooks to copies of the model
(``copy.deepcopy``, ``torch.save``/``torch.load``) at their first forward.
"""
from __future__ import annotations

import weakref
from typing import Iterator

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

_MASKED_ATTR = "_pi_mask_names"
_grad_hooks: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_masked_modules: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_optimizer_hook = None


def mask_name(param_name: str) -> str:
    return f"{param_name}_mask"


def get_mask(module: nn.Module, param_name: str) -> torch.Tensor | None:
    """The bool keep-mask of ``module.<param_name>``, or None if it is not masked."""
    if param_name not in getattr(module, _MASKED_ATTR, ()):
        return None
    return getattr(module, mask_name(param_name))


def masked_params(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, torch.Tensor]]:
    """Yield (module name, module, parameter name, mask) for every masked parameter of `model`."""
    for mod_name, module in model.named_modules():
        for param_name in sorted(getattr(module, _MASKED_ATTR, ())):
            yield mod_name, module, param_name, getattr(module, mask_name(param_name))


def set_mask(module: nn.Module, param_name: str, keep: torch.Tensor) -> None:
    """Install the keep-mask of ``module.<param_name>`` (combined with any mask already there:
    masks only grow) and zero the pruned entries."""
    param = getattr(module, param_name)
    keep = keep.to(device=param.device, dtype=torch.bool)
    if keep.shape != param.shape:
        raise ValueError(f"mask shape {tuple(keep.shape)} does not match {param_name} {tuple(param.shape)}")
    names = getattr(module, _MASKED_ATTR, None)
    if names is None:
        names = set()
        setattr(module, _MASKED_ATTR, names)
    if param_name in names:
        getattr(module, mask_name(param_name)).logical_and_(keep)
    else:
        module.register_buffer(mask_name(param_name), keep.clone())
        names.add(param_name)
    _track(module)
    if not any(hook is _track_before_forward for hook in module._forward_pre_hooks.values()):
        module.register_forward_pre_hook(_track_before_forward)
    with torch.no_grad():
        param.mul_(getattr(module, mask_name(param_name)))


def _track(module: nn.Module) -> None:
    """Attach gradient hooks and the optimizer hook for every mask of `module`."""
    hooks = _grad_hooks.setdefault(module, {})
    for param_name in getattr(module, _MASKED_ATTR, ()):
        param = getattr(module, param_name)
        if param_name not in hooks and isinstance(param, torch.Tensor) and param.requires_grad:
            hooks[param_name] = param.register_hook(_grad_masker(module, param_name))
    _masked_modules.add(module)
    _ensure_optimizer_hook()


def refresh_hooks(module: nn.Module) -> None:
    """Re-attach gradient hooks after a masked parameter was replaced (e.g. sliced by speed-up)."""
    for handle in _grad_hooks.pop(module, {}).values():
        handle.remove()
    _masked_modules.discard(module)
    if getattr(module, _MASKED_ATTR, None):
        _track(module)


def _track_before_forward(module: nn.Module, args) -> None:
    if module not in _masked_modules and getattr(module, _MASKED_ATTR, None):
        _track(module)
        reapply_masks(module)


def _grad_masker(module: nn.Module, param_name: str):
    ref = weakref.ref(module)

    def hook(grad: torch.Tensor) -> torch.Tensor:
        mod = ref()
        mask = None if mod is None else get_mask(mod, param_name)
        return grad if mask is None else grad * mask

    return hook


def reapply_masks(model: nn.Module) -> None:
    """Zero every masked entry of `model` again (after an optimizer step or a weight load)."""
    with torch.no_grad():
        for _, module, param_name, mask in masked_params(model):
            getattr(module, param_name).mul_(mask)


def _after_optimizer_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    with torch.no_grad():
        for module in list(_masked_modules):
            for param_name in getattr(module, _MASKED_ATTR, ()):
                param = getattr(module, param_name)
                if id(param) in stepped:
                    param.mul_(getattr(module, mask_name(param_name)))


def _ensure_optimizer_hook() -> None:
    global _optimizer_hook
    if _optimizer_hook is None:
        _optimizer_hook = register_optimizer_step_post_hook(_after_optimizer_step)


def remove_mask(module: nn.Module, param_name: str) -> None:
    """Bake one mask into its parameter and drop its buffer and hook."""
    mask = get_mask(module, param_name)
    if mask is None:
        return
    with torch.no_grad():
        getattr(module, param_name).mul_(mask)
    delattr(module, mask_name(param_name))
    names = getattr(module, _MASKED_ATTR)
    names.discard(param_name)
    handle = _grad_hooks.get(module, {}).pop(param_name, None)
    if handle is not None:
        handle.remove()
    if not names:
        delattr(module, _MASKED_ATTR)
        _masked_modules.discard(module)
        _grad_hooks.pop(module, None)
        for key, hook in list(module._forward_pre_hooks.items()):
            if hook is _track_before_forward:
                del module._forward_pre_hooks[key]
    _release_optimizer_hook()


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake every mask of `model` into its weights and remove all mask buffers and hooks."""
    for _, module, param_name, _ in list(masked_params(model)):
        remove_mask(module, param_name)
    return model


def _release_optimizer_hook() -> None:
    global _optimizer_hook
    if _optimizer_hook is not None and len(_masked_modules) == 0:
        _optimizer_hook.remove()
        _optimizer_hook = None
